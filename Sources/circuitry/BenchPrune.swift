import ArgumentParser
import Circuits
import Foundation

struct BenchPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Seconds of one (model, task) frontier against the seconds to train that model (opener task).")

    @Flag(help: "Print one JSON line.")
    var json = false

    @Option(help: "Model width.") var dModel = 64
    @Option(help: "Layers.") var nLayer = 2
    @Option(help: "Context length.") var context = 64
    @Option(help: "Vocabulary size.") var vocab = 512
    @Option(help: "Weight density of the block matrices.") var density = 0.25
    @Option(help: "AbsTopK fraction.") var afrac = 0.25
    @Option(help: "Training steps (the paper sweep trains 6000).") var trainSteps = 6000
    @Option(help: "Training batch (sequences).") var batch = 32
    @Option(help: "Mask-training steps per λ.") var steps = 400
    @Option(help: "Train pairs of the task.") var trainPairs = 2048
    @Option(help: "Test pairs of the task.") var testPairs = 512
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Seed.") var seed: UInt64 = 1

    func run() throws {
        var bench = PruneBenchmark()
        bench.model = .init(vocab: vocab, context: context, dModel: dModel, nLayer: nLayer, afrac: afrac)
        bench.training = .init(density: density, steps: trainSteps, batch: batch, seed: seed)
        bench.frontier.pruning.steps = steps
        bench.trainPairs = trainPairs
        bench.testPairs = testPairs
        bench.threads = threads
        let result = try bench.run { message in if !json { FileHandle.standardError.write(Data((message + "\n").utf8)) } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = json ? [.sortedKeys] : [.sortedKeys, .prettyPrinted]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    }
}
