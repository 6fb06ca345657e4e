//! Webhook signature checks (see issue 3).
