fn main() {
    eprintln!("netpol-probe: not built yet");
    std::process::exit(1);
}
