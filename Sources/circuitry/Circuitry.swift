import ArgumentParser

@main
struct Circuitry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "circuitry",
        abstract: "Train weight-sparse transformers, prune them to circuits, and sweep both across machines.",
        subcommands: [
            Bench.self,
            Prune.self,
        ]
    )
}
