extension BPETokenizer {
    /// Corpus bytes a tokenizer is trained on unless told otherwise, by every command and by a
    /// sweep's prepare shard: the same corpus, seed and vocabulary size give the same tokenizer everywhere.
    public static let defaultTrainingBytes = 2_000_000
}
