import ArgumentParser
import Foundation
import SparseGPT

/// `circuitry bench train`: the training benchmark, flags as the reference's `sparse_gpt.py bench`.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time training steps on seeded random tokens (tokens/s, ms/step), like the PyTorch reference's bench.")

    @Flag(help: "Print one JSON line.") var json = false
    @Option(help: "Model width.") var dModel = 64
    @Option(help: "Transformer blocks.") var nLayer = 2
    @Option(help: "Sequence length.") var context = 64
    @Option(help: "Sequences per step.") var batch = 32
    @Option(help: "Vocabulary size.") var vocab = 512
    @Option(help: "Block-matrix density (1 = dense).") var density = 0.0625
    @Option(help: "Embedding density (default min(1, 4 density)).") var embedDensity: Double?
    @Option(help: "AbsTopK fraction (1 = off).") var afrac = 0.25
    @Option(help: "Steps in all (the first 5 are warm-up and not timed).") var steps = 50
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Flag(help: "Run every product as dense sgemm (shows what skipping zero weights gains).") var denseProducts = false
    @Flag(help: "Also time each phase of the timed steps (ms per step).") var profile = false

    func run() throws {
        var bench = TrainingBenchmark(
            model: ModelConfig(vocab: vocab, context: context, dModel: dModel, nLayer: nLayer, afrac: afrac),
            training: TrainingConfig(density: density, embedDensity: embedDensity, steps: steps, batch: batch, seed: seed),
            threads: threads, sparseKernels: !denseProducts)
        bench.profile = profile
        let result = try bench.run()
        if json {
            print(try bench.jsonLine(result))
        } else {
            print("d_model \(dModel) n_layer \(nLayer) density \(density) afrac \(afrac) threads \(threads): "
                  + "\(Int(result.tokensPerSecond)) tokens/s, \(String(format: "%.1f", result.msPerStep)) ms/step, "
                  + "\(result.nonzeroParameters)/\(result.parameters) nonzero, final loss \(result.finalLoss)")
            for (i, name) in TrainingBenchmark.phaseNames.enumerated() where bench.profile {
                print("  \(name): " + String(format: "%.1f ms/step wall, %.1f ms/step CPU", result.phaseMilliseconds[i],
                                              result.phaseCPUMilliseconds[i]))
            }
        }
    }
}
