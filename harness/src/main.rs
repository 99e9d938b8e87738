fn main() {
    eprintln!("netpol-harness: not built yet");
    std::process::exit(1);
}
