#[cfg(feature = "ssr")]
fn main() -> std::process::ExitCode {
    onbehalf::cli::main()
}

#[cfg(not(feature = "ssr"))]
fn main() {
    // The browser entry point is `onbehalf::hydrate` in lib.rs; this binary only exists with `ssr`.
}
