//! Token Status List decoding: the first byte picks `bits`, the rest is the `lst` member
//! (base64url of zlib), as a status-list JWT carries it. Decoding must return, never panic,
//! never inflate past its cap, and every slot lookup must answer.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use proofgate_core::revocation::{SlotStatus, StatusList};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let bits = [1u8, 2, 4, 8, 0, 3, 16, 255][usize::from(first & 7)];
    let Ok(lst) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(list) = StatusList::decode(bits, lst, 0, Instant::now()) else {
        return;
    };
    for idx in [0, 1, 7, 8, 255, 4096, 1 << 20, u64::MAX / 8, u64::MAX] {
        let status = list.get(idx);
        if !list.covers(idx) {
            assert_eq!(
                status,
                SlotStatus::Unavailable,
                "slot {idx} outside the list"
            );
        }
    }
});
