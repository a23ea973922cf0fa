//! The `hearth` command line.

fn main() {
    println!("hearth {}", env!("CARGO_PKG_VERSION"));
}
