//! The built-in demo provider: a Globus-compatible authorization server and Transfer API subset on loopback.
