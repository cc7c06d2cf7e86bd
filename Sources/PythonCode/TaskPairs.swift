/// A task's pairs tokenized for the model, in the layout of the reference's `opener_pairs`:
/// pair i is prompts 2i (A) and 2i+1 (B). Prompts are right-padded with token 0 to `width`.
public struct TaskPairs: Sendable {
    public let task: String
    /// Row width of `prompts`: the maximum prompt length (the model context).
    public let width: Int
    /// (2 · pairCount) × width token ids, row-major, right-padded with 0.
    public let prompts: [Int32]
    /// Length of each prompt; the answer is predicted at position length - 1.
    public let lengths: [Int32]
    /// (2 · pairCount) × 2: [correct, wrong] candidate token ids for each prompt.
    public let candidates: [Int32]
    /// The pairs as text, in the same order.
    public let pairs: [TaskPair]

    public var pairCount: Int { pairs.count }
    public var promptCount: Int { lengths.count }

    /// Prompt `p` without padding.
    public func prompt(_ p: Int) -> ArraySlice<Int32> {
        prompts[(p * width)..<(p * width + Int(lengths[p]))]
    }
}

public struct TaskSplits: Sendable {
    public let train: TaskPairs
    public let test: TaskPairs
}

extension PythonTask {
    /// The candidate token ids (first token of each continuation on its own) of a pair, or an
    /// error naming the task and both continuations when they coincide.
    public func candidateTokens(_ pair: TaskPair, tokenizer: BPETokenizer) throws -> (target: Int32, alt: Int32) {
        let t = tokenizer.encode(pair.target)
        let a = tokenizer.encode(pair.alt)
        guard let t0 = t.first, let a0 = a.first, t0 != a0 else {
            throw TaskError.candidatesCoincide(task: name, target: pair.target, alt: pair.alt,
                                               token: t.first.map { tokenizer.display($0) } ?? "")
        }
        return (Int32(t0), Int32(a0))
    }

    /// Rejects the task at sweep start if its fixed candidates share a first token.
    public func validate(tokenizer: BPETokenizer) throws {
        if let fixed = fixedCandidates {
            _ = try candidateTokens(TaskPair(promptA: "", promptB: "", target: fixed.target, alt: fixed.alt),
                                    tokenizer: tokenizer)
        }
    }

    /// Train and test pairs, deterministic for a seed and tokenizer.
    ///
    /// Each prompt is tokenized as a whole; a pair is kept only if both prompts fit within
    /// `maxLength` tokens, so every prompt fits the model context by construction (the generators
    /// keep prompts short, about 10 to 45 tokens, so few are redrawn). Train pairs come from one
    /// seed stream and test pairs from another; a test pair whose prompt A text occurs among the
    /// train pairs is redrawn, as is a duplicate within a split, so the splits are disjoint.
    /// A pair whose candidate tokens coincide, or, for per-pair candidates (`var_swap`), whose
    /// candidates are not single tokens, is redrawn; a task whose fixed candidates coincide is
    /// rejected with an error.
    public func makePairs(tokenizer: BPETokenizer, seed: UInt64, trainPairs: Int = 2048, testPairs: Int = 512,
                          maxLength: Int = 64) throws -> TaskSplits {
        try validate(tokenizer: tokenizer)
        var seen = Set<String>()
        let train = try makeSplit(count: trainPairs, rng: SeededGenerator(seed: seed, stream: 0x7A1),
                                  tokenizer: tokenizer, maxLength: maxLength, seen: &seen)
        let test = try makeSplit(count: testPairs, rng: SeededGenerator(seed: seed, stream: 0x7E57),
                                 tokenizer: tokenizer, maxLength: maxLength, seen: &seen)
        return TaskSplits(train: train, test: test)
    }

    private func makeSplit(count: Int, rng: SeededGenerator, tokenizer: BPETokenizer, maxLength: Int,
                           seen: inout Set<String>) throws -> TaskPairs {
        var rng = rng
        var pairs: [TaskPair] = []
        var prompts = [Int32](repeating: 0, count: 2 * count * maxLength)
        var lengths: [Int32] = []
        var candidates: [Int32] = []
        var attempts = 0, tooLong = 0, duplicates = 0, coinciding = 0
        let attemptLimit = 50 * count + 1000
        while pairs.count < count {
            attempts += 1
            if attempts > attemptLimit {
                throw TaskError.cannotFit(task: name, maxLength: maxLength, reason:
                    "\(pairs.count) of \(count) pairs after \(attemptLimit) draws (\(tooLong) too long, \(duplicates) duplicates, \(coinciding) with coinciding or multi-token candidates)")
            }
            let pair = makePair(&rng)
            if seen.contains(pair.promptA) {
                duplicates += 1
                continue
            }
            let a = tokenizer.encode(pair.promptA)
            let b = tokenizer.encode(pair.promptB)
            guard a.count <= maxLength, b.count <= maxLength, !a.isEmpty, !b.isEmpty else {
                tooLong += 1
                continue
            }
            let cand: (target: Int32, alt: Int32)
            do {
                cand = try candidateTokens(pair, tokenizer: tokenizer)
            } catch {
                coinciding += 1
                continue
            }
            // Per-pair candidates (swapped names) must each be one whole token, so the answer is
            // the name itself rather than a fragment two names share.
            if fixedCandidates == nil && (tokenizer.encode(pair.target).count != 1 || tokenizer.encode(pair.alt).count != 1) {
                coinciding += 1
                continue
            }
            seen.insert(pair.promptA)
            let row = 2 * pairs.count
            for (k, id) in a.enumerated() { prompts[row * maxLength + k] = Int32(id) }
            for (k, id) in b.enumerated() { prompts[(row + 1) * maxLength + k] = Int32(id) }
            lengths += [Int32(a.count), Int32(b.count)]
            candidates += [cand.target, cand.alt, cand.alt, cand.target]
            pairs.append(pair)
        }
        return TaskPairs(task: name, width: maxLength, prompts: prompts, lengths: lengths,
                         candidates: candidates, pairs: pairs)
    }
}
