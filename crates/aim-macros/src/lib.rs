//! The #[aim::action] attribute: guard a sync or async function with AIM action verification.
