//! fastway over std.
