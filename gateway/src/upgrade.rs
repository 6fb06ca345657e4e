//! The safety check of a graceful upgrade: on `SIGQUIT` the listening sockets are handed only to
//! a socket that our own user owns, in a directory others cannot tamper with.

use std::path::Path;
use std::time::Duration;

/// How long the process that got `SIGQUIT` waits for the new process's upgrade socket to
/// appear (the new process waits about 6 s for the sockets).
pub(crate) const UPGRADE_PEER_WAIT: Duration = Duration::from_secs(5);

/// The effective user of this process: the owner of `/proc/self` (no `unsafe` for `geteuid`).
#[cfg(unix)]
pub(crate) fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Before the listening sockets go to whatever listens at `path`: it must be a Unix socket owned
/// by `uid` (this process's user), in a directory that others cannot write to (or one with the
/// sticky bit, like `/tmp`, where they cannot remove or replace our socket). Otherwise another
/// local user who got there first — `/tmp` is the default — would receive the gateway's
/// listening sockets and its traffic. Waits up to `wait` for the socket to appear.
#[cfg(unix)]
pub(crate) async fn upgrade_peer_check(
    path: &Path,
    uid: Option<u32>,
    wait: Duration,
) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Some(uid) = uid else {
        return Err("cannot tell this process's user (no /proc/self)".into());
    };
    let start = tokio::time::Instant::now();
    let meta = loop {
        match std::fs::symlink_metadata(path) {
            Ok(m) => break m,
            Err(_) if start.elapsed() < wait => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(format!("no new process is waiting there ({e})")),
        }
    };
    if !meta.file_type().is_socket() {
        return Err("it is not a Unix socket".into());
    }
    if meta.uid() != uid {
        return Err(format!(
            "the socket belongs to uid {}, not to this process's uid {uid}",
            meta.uid()
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir_meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (others_write, sticky) = (dir_meta.mode() & 0o002 != 0, dir_meta.mode() & 0o1000 != 0);
    if others_write && !sticky {
        return Err(format!(
            "{} is writable by every user without the sticky bit, so the socket could be replaced",
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A temporary directory with `mode`, removed on drop.
    fn dir(mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    const WAIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn upgrade_peer_must_be_our_own_socket_in_a_safe_directory() {
        let uid = own_uid();
        assert!(uid.is_some(), "/proc/self has an owner");

        // Our socket in a private directory, and in a sticky world-writable one like /tmp.
        for (name, mode) in [("private", 0o700), ("sticky", 0o1777)] {
            let d = dir(mode);
            let sock = d.path().join("upgrade.sock");
            let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            assert_eq!(upgrade_peer_check(&sock, uid, WAIT).await, Ok(()), "{name}");
            // The same socket is refused to a process of another user.
            let other = uid.map(|u| u.wrapping_add(1));
            let err = upgrade_peer_check(&sock, other, WAIT).await.unwrap_err();
            assert!(err.contains("belongs to uid"), "{err}");
        }

        // A world-writable directory without the sticky bit: the socket could be swapped.
        let d = dir(0o777);
        let sock = d.path().join("upgrade.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let err = upgrade_peer_check(&sock, uid, WAIT).await.unwrap_err();
        assert!(err.contains("writable by every user"), "{err}");

        // Nothing there (no new process), or not a socket.
        let d = dir(0o700);
        let err = upgrade_peer_check(&d.path().join("upgrade.sock"), uid, WAIT)
            .await
            .unwrap_err();
        assert!(err.contains("no new process"), "{err}");
        std::fs::write(d.path().join("file"), b"x").unwrap();
        let err = upgrade_peer_check(&d.path().join("file"), uid, WAIT)
            .await
            .unwrap_err();
        assert!(err.contains("not a Unix socket"), "{err}");

        // Without a known user nothing is handed over.
        assert!(upgrade_peer_check(&d.path().join("x"), None, WAIT)
            .await
            .is_err());
    }
}
