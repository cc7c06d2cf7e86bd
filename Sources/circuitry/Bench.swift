import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: each prints one JSON line with --json.",
        subcommands: [
            BenchTrain.self,
            BenchTokenizer.self,
            BenchPrune.self,
        ]
    )
}
