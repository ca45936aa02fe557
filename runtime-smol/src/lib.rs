//! fastway over smol.
