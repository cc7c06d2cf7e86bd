import Foundation

/// Measures BPE training and coding speed on a corpus (used by `circuitry bench tokenizer`).
public enum TokenizerBenchmark {
    public struct Result {
        public let bytes: Int
        public let trainSeconds: Double
        public let encodeMBPerSecond: Double
        public let decodeMBPerSecond: Double
        public let bytesPerToken: Double
        public let roundTrips: Bool
    }

    public static func run(source: CorpusSource, bytes: Int, vocabularySize: Int) throws -> Result {
        let text = try source.trainingText(bytes: bytes)
        var t = Date()
        let tokenizer = try BPETokenizer.train(on: text, vocabularySize: vocabularySize)
        let trainSeconds = Date().timeIntervalSince(t)
        t = Date()
        let ids = tokenizer.encode(bytes: text)
        let encodeSeconds = Date().timeIntervalSince(t)
        t = Date()
        let decoded = tokenizer.decode(ids)
        let decodeSeconds = Date().timeIntervalSince(t)
        let mb = Double(text.count) / 1e6
        return Result(bytes: text.count, trainSeconds: trainSeconds, encodeMBPerSecond: mb / encodeSeconds,
                      decodeMBPerSecond: mb / decodeSeconds, bytesPerToken: Double(text.count) / Double(max(1, ids.count)),
                      roundTrips: decoded == text)
    }
}
