import Foundation

/// Artifacts on their way between the coordinator and a worker, in chunks of
/// `WireProtocol.chunkSize`: the worker's downloads into its cache, and its uploads.
struct Downloads {
    private struct Download {
        var size: Int
        var received: Int
        var lastChunk: Double
        var partial: URL
    }

    private let cache: ArtifactStore
    private var inProgress: [String: Download] = [:]

    init(cache: ArtifactStore) { self.cache = cache }

    var hashes: [String] { Array(inProgress.keys) }
    func contains(_ hash: String) -> Bool { inProgress[hash] != nil }

    /// Starts fetching an artifact; returns the first chunk request, or nil when the artifact is
    /// empty and already complete (then `finish` must be called).
    mutating func start(_ artifact: ArtifactRef, now: Double) throws -> ChunkRequest? {
        let partial = try cache.partialFile(for: artifact.hash, tag: "\(getpid())")
        inProgress[artifact.hash] = Download(size: artifact.size, received: 0, lastChunk: now, partial: partial)
        return artifact.size == 0 ? nil : request(artifact.hash, offset: 0)
    }

    private func request(_ hash: String, offset: Int) -> ChunkRequest {
        ChunkRequest(hash: hash, offset: offset, length: WireProtocol.chunkSize)
    }

    enum ChunkOutcome {
        case ignored
        case next(ChunkRequest)
        case complete
    }

    /// Appends a chunk that continues a download; says what to ask next.
    mutating func receive(_ header: ChunkHeader, _ data: Data, now: Double) throws -> ChunkOutcome {
        guard var download = inProgress[header.hash], header.offset == download.received else { return .ignored }
        try cache.append(data, to: download.partial)
        download.received += data.count
        download.lastChunk = now
        inProgress[header.hash] = download
        return download.received >= download.size ? .complete : .next(request(header.hash, offset: download.received))
    }

    /// Moves a complete download into the cache once its hash checks; returns the hash it has.
    mutating func finish(_ hash: String, whileHashing: () -> Void = {}) throws -> String? {
        guard let download = inProgress.removeValue(forKey: hash) else { return nil }
        return try cache.commit(download.partial, as: hash, whileHashing: whileHashing)
    }

    mutating func cancel(_ hash: String) {
        if let download = inProgress.removeValue(forKey: hash) { try? FileManager.default.removeItem(at: download.partial) }
    }

    /// Requests to repeat: for every download (after a reconnect), or for the ones stalled longer than `stall`.
    mutating func resumeRequests(stalledFor stall: Double = 0, now: Double) -> [ChunkRequest] {
        var requests: [ChunkRequest] = []
        for (hash, download) in inProgress where now - download.lastChunk >= stall {
            inProgress[hash]!.lastChunk = now
            requests.append(request(hash, offset: download.received))
        }
        return requests
    }
}

/// Hands the chunks of an artifact in the cache to `send`, as `put` messages, one at a time.
func uploadChunks(of hash: String, kind: String, from cache: ArtifactStore, _ send: (Message) -> Void) throws {
    let url = cache.url(hash)
    guard let handle = try? FileHandle(forReadingFrom: url) else {
        throw SweepError("artifact \(hash) is no longer in the cache \(cache.directory.path)")
    }
    defer { try? handle.close() }
    do {
        let size = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        var offset = 0
        repeat {
            let data = try handle.read(upToCount: WireProtocol.chunkSize) ?? Data()
            send(.put(ChunkHeader(hash: hash, size: size, offset: offset, kind: kind), data))
            offset += data.count
            if data.isEmpty { break }
        } while offset < size
    } catch {
        throw fileError("cannot read the artifact", url, error)
    }
}
