//! `fastway-bench`: the load tool (see `fastway-bench --help` and BENCHMARKS.md).

fn main() -> std::process::ExitCode {
    fastway::bench::main()
}
