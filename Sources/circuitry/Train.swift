import ArgumentParser
import Foundation
import PythonCode
import SparseGPT
import Sweep

/// `circuitry train`: trains one weight-sparse model and writes its checkpoint.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one weight-sparse GPT from flags or a YAML run file and write a safetensors checkpoint.",
        discussion: """
        Settings come from --config (a flat YAML mapping with the reference's keys: d_model, n_layer, density, \
        embed_density, lr, steps, ...), then from flags, which override the file. Training data is a corpus \
        (--corpus synthetic or a directory of .py files, through --tokenizer or a new tokenizer saved beside \
        the checkpoint; the held-out loss is on its held-out part), or flat little-endian uint16 token files \
        (--tokens, --held-out-tokens); with neither, a seeded random token stream (said on stderr). --resume continues a \
        checkpoint's run (its configuration; give the same data flags) to the end, bit for bit as an \
        uninterrupted run.
        """)

    @Option(help: "YAML run file (flat mapping of settings).") var config: String?
    @Option(help: "Checkpoint to continue from (its configuration is used).") var resume: String?
    @Option(help: "Where to write the checkpoint (.safetensors).") var out: String
    @Option(help: "Training tokens: flat little-endian uint16 file.") var tokens: String?
    @Option(help: "Held-out tokens, same format.") var heldOutTokens: String?
    @Option(help: "Held-out windows evaluated.") var heldOutWindows = 256
    @Option(help: "Train on a corpus instead of token files: \"synthetic\" or a directory of .py files.") var corpus: String?
    @Option(help: "Corpus seed (synthetic programs; the file order of a directory).") var corpusSeed: UInt64 = 0
    @Option(help: "Tokenizer JSON for --corpus (default: train one of the model's vocabulary and save it beside --out).") var tokenizer: String?
    @Option(help: "Corpus tokens to train on, with --corpus.") var trainTokenCount = 4_000_000
    @Option(help: "Held-out corpus tokens, with --corpus.") var heldOutTokenCount = 200_000
    @Option(help: "Stop after this many steps in all (the schedule still spans --steps), to continue later with --resume.") var stopAfter: Int?
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Progress line every N steps when stderr is not a terminal.") var logEvery = 50
    @Option(help: "Held-out evaluation every N steps (0: at the end only).") var evalEvery = 0

    @OptionGroup(title: "Model") var shape: ModelShapeOptions
    @Option(help: "Base learning rate.") var lr: Double?
    @Option(help: "Optimizer steps.") var steps: Int?
    @Option(help: "Sequences per step.") var batch: Int?
    @Option(help: "Seed (weights and batches).") var seed: UInt64?

    private var configFlags: [String] {
        shape.given + [("--lr", lr != nil), ("--steps", steps != nil), ("--batch", batch != nil), ("--seed", seed != nil),
                       ("--config", config != nil)].filter(\.1).map(\.0)
    }

    func runConfig() throws -> RunConfig {
        var run = RunConfig()
        if let config {
            guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
                throw ValidationError("cannot read run file \(config)")
            }
            run = try RunConfig.fromYAML(text, file: config)
        }
        shape.apply(to: &run.model, &run.training)
        if let lr { run.training.lr = lr }
        if let steps { run.training.steps = steps }
        if let batch { run.training.batch = batch }
        if let seed { run.training.seed = seed }
        return run
    }

    func validate() throws {
        try ArgumentChecks.outputFile(out, option: "--out")
    }

    func run() throws {
        let trainer: Trainer
        var resumed: Checkpoint?
        if let resume {
            if let flag = configFlags.first {
                throw ValidationError("--resume continues the checkpoint's configuration; drop \(flag)")
            }
            resumed = try Checkpoint.load(from: resume)
            trainer = try resumed!.makeTrainer(threads: threads)
        } else {
            let run = try runConfig()
            try run.training.validate(for: run.model)
            trainer = try Trainer(model: GPT(config: run.model, seed: run.training.seed, threads: threads), config: run.training)
        }
        let model = trainer.model.config, training = trainer.config
        let trainTokens: [Int32], trainName: String
        var heldOut: [Int32]?
        var tokenizerHash = resumed?.tokenizerHash
        if let corpus {
            guard tokens == nil, heldOutTokens == nil else {
                throw ValidationError("--corpus replaces --tokens and --held-out-tokens; give one or the other")
            }
            let (material, tok) = try corpusMaterial(corpus, vocab: model.vocab)
            if let resumed, let resume {
                try TokenizerIdentity.check(tok, file: tokenizer ?? "the new tokenizer", against: resumed, file: resume)
            }
            tokenizerHash = tok.sha256
            trainTokens = material.train.map(Int32.init)
            trainName = "corpus \(corpus)"
            heldOut = try TokenWindows(tokens: material.heldOut.map(Int32.init), length: model.context, vocab: model.vocab,
                                       name: "held-out corpus \(corpus)").evenlySpacedWindows(count: heldOutWindows)
        } else {
            if tokens == nil {
                FileHandle.standardError.write(Data("no --corpus or --tokens: training on seeded random tokens, which teach nothing (for timing); --corpus synthetic trains on Python\n".utf8))
            }
            trainTokens = try tokens.map(readTokenFile) ?? randomTokens(count: 1 << 22, vocab: model.vocab, seed: training.seed)
            trainName = tokens ?? "random token stream"
            if let heldOutTokens {
                heldOut = try TokenWindows(tokens: readTokenFile(heldOutTokens), length: model.context, vocab: model.vocab,
                                           name: heldOutTokens).evenlySpacedWindows(count: heldOutWindows)
            } else if tokens == nil {
                heldOut = try TokenWindows(tokens: randomTokens(count: 1 << 16, vocab: model.vocab, seed: training.seed &+ 1),
                                           length: model.context, vocab: model.vocab).evenlySpacedWindows(count: heldOutWindows)
            }
        }
        let data = try TokenWindows(tokens: trainTokens, length: model.context, vocab: model.vocab, name: trainName)
        let run = try TrainingRun(trainer: trainer, data: data, heldOut: heldOut)
        let line = ProgressLine(interactive: isatty(STDERR_FILENO) != 0)
        try run.run(until: stopAfter, reportEvery: line.interactive ? 1 : max(1, logEvery), evaluateEvery: evalEvery) { line.show($0) }
        line.finish()
        try Checkpoint(trainer: trainer, tokenizerHash: tokenizerHash).save(to: out)
        FileHandle.standardError.write(Data("wrote \(out) at step \(trainer.step) of \(training.steps)\n".utf8))
    }
}

extension Train {
    /// Train and held-out token streams of a corpus, through the given tokenizer or a new one of the
    /// model's vocabulary (saved beside the checkpoint, since the pruning tasks need the same one).
    func corpusMaterial(_ corpus: String, vocab: Int) throws -> (TrainingTokens, BPETokenizer) {
        let source = CorpusSource(argument: corpus, seed: corpusSeed)
        let tok: BPETokenizer
        if let tokenizer {
            tok = try BPETokenizer.load(from: tokenizer)
        } else {
            let path = (out as NSString).deletingPathExtension + ".tokenizer.json"
            FileHandle.standardError.write(Data("training a \(vocab)-token tokenizer on \(source)\n".utf8))
            tok = try BPETokenizer.trainServingTasks(on: try source.trainingText(bytes: BPETokenizer.defaultTrainingBytes), vocabularySize: vocab).tokenizer
            try tok.save(to: path)
            FileHandle.standardError.write(Data("wrote \(path)\n".utf8))
        }
        guard tok.vocabularySize <= vocab else {
            throw ValidationError("the tokenizer has \(tok.vocabularySize) tokens but the model's vocabulary is \(vocab): pass --vocab \(tok.vocabularySize)")
        }
        return (try source.tokens(tokenizer: tok, trainTokens: trainTokenCount, heldOutTokens: heldOutTokenCount), tok)
    }
}

/// The live progress line on stderr: rewritten in place on a terminal, one line per report otherwise.
struct ProgressLine {
    let interactive: Bool

    func show(_ p: TrainingProgress) {
        var text = String(format: "step %d/%d  loss %.4f  %.0f tok/s  density %.4f (embed %.4f)  nonzero %d  ETA %@",
                          p.step, p.steps, p.loss, p.tokensPerSecond, p.density, p.embedDensity, p.nonzero, duration(p.etaSeconds))
        if let heldOut = p.heldOutLoss { text += String(format: "  held-out %.4f", heldOut) }
        FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
