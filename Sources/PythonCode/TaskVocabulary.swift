/// the sweep's tokenizer must serve every task on any corpus.
extension PythonTask {
    /// Every continuation the task compares: its two fixed candidates, or, for per-pair
    /// candidates (`var_swap`), each name it may swap with its leading space.
    public var candidateContinuations: [String] {
        if let fixed = fixedCandidates { return [fixed.target, fixed.alt] }
        return Pools.shortVariables.map { " " + $0 }
    }

    /// The first pre-tokenization piece of each candidate of every task: what a task compares is
    /// the first token, and merges never cross a piece, so the piece is the most one token can be.
    public static var candidatePieces: [[UInt8]] {
        var pieces: [[UInt8]] = []
        for task in all {
            for continuation in task.candidateContinuations {
                if let first = PreTokenizer.pieces(Array(continuation.utf8)).first, !pieces.contains(first) {
                    pieces.append(first)
                }
            }
        }
        return pieces
    }
}

extension BPETokenizer {
    /// The tokenizer a sweep trains on its corpus: byte-level BPE in which every task's fixed
    /// candidates are whole tokens (so their first tokens differ) and `var_swap` has names to swap
    /// that are whole tokens.
    ///
    /// Plain BPE is kept when it already does that (as on the synthetic corpus, whose programs are
    /// full of the candidates), so such corpora get exactly the tokenizer they always had;
    /// otherwise every task's candidate pieces, the swappable names included, are reserved before
    /// the merges. `reserved` lists the candidate pieces plain BPE split when it was not kept.
    public static func trainServingTasks(on text: [UInt8], vocabularySize: Int = 512) throws
        -> (tokenizer: BPETokenizer, reserved: [String]) {
        let plain = try train(on: text, vocabularySize: vocabularySize)
        if plain.servesTasks { return (plain, []) }
        return (try train(on: text, vocabularySize: vocabularySize, reserving: PythonTask.candidatePieces),
                plain.splitCandidatePieces)
    }

    /// Every fixed candidate is one token, and at least two of `var_swap`'s names are (its pairs
    /// use only names that are whole tokens).
    public var servesTasks: Bool {
        PythonTask.all.allSatisfy { task in
            let whole = task.candidateContinuations.filter { continuation in
                PreTokenizer.pieces(Array(continuation.utf8)).first.map { encode(bytes: $0).count == 1 } ?? false
            }.count
            return task.fixedCandidates != nil ? whole == 2 : whole >= 2
        }
    }

    /// The candidate pieces that are not one token under this tokenizer.
    public var splitCandidatePieces: [String] {
        PythonTask.candidatePieces.filter { encode(bytes: $0).count != 1 }.map { String(decoding: $0, as: UTF8.self) }
    }
}
