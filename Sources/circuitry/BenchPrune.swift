import ArgumentParser
import Circuits
import Foundation
import SparseGPT

struct BenchPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Seconds of one (model, task) frontier against the seconds to train that model (opener task).",
        discussion: "The model: d_model 64, 2 blocks, context 64, vocabulary 512, density 0.25, afrac 0.25, unless the model flags say otherwise.")

    @Flag(help: "Print one JSON line.")
    var json = false

    @OptionGroup(title: "Model") var shape: ModelShapeOptions
    @Option(help: "Training steps (the paper sweep trains 6000).") var trainSteps = 6000
    @Option(help: "Training batch (sequences).") var batch = 32
    @Option(help: "Mask-training steps per λ.") var steps = 400
    @Option(help: "Train pairs of the task.") var trainPairs = 2048
    @Option(help: "Test pairs of the task.") var testPairs = 512
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Seed.") var seed: UInt64 = 1

    func run() throws {
        var bench = PruneBenchmark()
        var model = ModelConfig(vocab: 512, context: 64, dModel: 64, nLayer: 2, afrac: 0.25)
        var training = TrainingConfig(density: 0.25, steps: trainSteps, batch: batch, seed: seed)
        shape.apply(to: &model, &training)
        bench.model = model
        bench.training = training
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
