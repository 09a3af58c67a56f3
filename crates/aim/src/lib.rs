//! The AIM toolkit: agent identity, verified actions and an encrypted memory vault, re-exported behind features.

/// The AIM client (`aim-client`): registration, signed action verification, the action guard.
#[cfg(feature = "client")]
pub use aim_client as client;

/// `#[aim::action("read_database", resource = "...")]`: run a function only when approved.
#[cfg(feature = "client")]
pub use aim_macros::action;

/// Support code for `#[aim::action]`; not a stable API.
#[cfg(feature = "client")]
#[doc(hidden)]
pub use aim_client::__private;
