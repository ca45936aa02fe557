//! fastway over tokio.
