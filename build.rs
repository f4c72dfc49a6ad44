//! Rebuilds when a migration is added or changed: `sqlx::migrate!` embeds `migrations/` at compile time, and on
//! stable Rust the compiler does not know the macro read those files (sqlx's own advice: `sqlx migrate build-script`).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
