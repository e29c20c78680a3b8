//! The one integration test binary of karya-packs: pack validation at load, the built-in
//! packs, and field-level checks of work item inputs.

mod builtin;
mod intake;
mod load;
