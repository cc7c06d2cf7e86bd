import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: each prints one JSON line with --json.",
        subcommands: [
            BenchDispatch.self,
            BenchTrain.self,
            BenchTokenizer.self,
            BenchPrune.self,
        ]
    )
}
