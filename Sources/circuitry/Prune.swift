import ArgumentParser
import Circuits
import Foundation

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prune a trained model to the smallest circuit per task (SPEC 4) and write the circuits as JSON.")

    @Option(help: "Trained model checkpoint (.safetensors).")
    var model: String

    @Option(help: "Task pairs file (JSON: task, train and test prompts, lengths, candidates).")
    var pairs: String

    @Option(help: "Task to prune (repeatable).")
    var task: [String] = []

    @Flag(help: "Prune every task in the pairs file.")
    var allTasks = false

    @Option(help: "Held-out corpus tokens (flat uint16) to take the node means over.")
    var heldOutTokens: String?

    @Option(help: "Node means file: reused when it matches the model and tokens, else written.")
    var means: String?

    @Option(help: "Held-out windows the node means are taken over.")
    var meanWindows = 256

    @Option(help: "Target task loss of the reported circuit.")
    var target: Float = 0.15

    @Option(parsing: .upToNextOption, help: "Sparsity penalties λ of the frontier.")
    var lambdas: [Float] = FrontierSettings().lambdas

    @Option(parsing: .upToNextOption, help: "Target task losses of the frontier.")
    var targets: [Float] = FrontierSettings().targets

    @Option(help: "Mask-training steps per λ.")
    var steps = PruningSettings().steps

    @Option(help: "Pairs per mask-training step.")
    var batchPairs = PruningSettings().batchPairs

    @Option(help: "Adam learning rate on τ.")
    var lr = PruningSettings().learningRate

    @Option(help: "Seed of batch sampling and τ noise.")
    var seed: UInt64 = 0

    @Option(help: "Parallel λ runs (one model copy each).")
    var workers = 2

    @Option(help: "Directory for <task>.circuit.json and <task>.frontier.json.")
    var out = "circuits"

    func validate() throws {
        guard allTasks != !task.isEmpty else { throw ValidationError("give --task NAME (repeatable) or --all-tasks") }
        guard heldOutTokens != nil || means != nil else { throw ValidationError("give --held-out-tokens FILE or --means FILE") }
    }

    func run() throws {
        var request = PruneRequest(modelPath: model, pairsPath: pairs)
        request.tasks = allTasks ? [] : task
        request.heldOutTokensPath = heldOutTokens
        request.meansPath = means
        request.meanWindows = meanWindows
        request.target = target
        request.settings.lambdas = lambdas
        request.settings.targets = targets
        request.settings.pruning.steps = steps
        request.settings.pruning.batchPairs = batchPairs
        request.settings.pruning.learningRate = lr
        request.settings.pruning.seed = seed
        request.workers = workers
        request.outputDirectory = out
        let outcomes = try runPrune(request) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        for outcome in outcomes { print(outcome.summary) }
    }
}
