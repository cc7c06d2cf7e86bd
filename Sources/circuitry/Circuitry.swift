import ArgumentParser
import SparseGPT

@main
struct Circuitry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "circuitry",
        abstract: "Train weight-sparse transformers, prune them to circuits, and sweep both across machines.",
        version: "circuitry 0.1.0",
        subcommands: [
            Bench.self,
            Corpus.self,
            Tokenizer.self,
            Tasks.self,
            RunCommand.self,
            CoordinatorCommand.self,
            WorkerCommand.self,
            StatusCommand.self,
            ResumeCommand.self,
            RetryCommand.self,
            ExtendCommand.self,
            ReportCommand.self,
            ExportCommand.self,
            ShardCommand.self,
            Prune.self,
            Train.self,
            KeygenCommand.self,
        ]
    )

    /// Every command runs under the pinned BLAS kernel, so its results do not depend on the machine.
    static func main() {
        BLASKernel.pinByRestarting()
        main(nil)
    }
}
