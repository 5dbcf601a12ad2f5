//! Never built: this package only pins the crates .ci/windows-check reads.
