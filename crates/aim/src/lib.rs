//! The AIM toolkit: agent identity, verified actions and an encrypted memory vault, re-exported behind features.
