import Foundation
import Logging
import ZeroMQ

/// Owns the store and hands shards to workers over a ROUTER socket (the ZeroMQ guide's
/// Paranoid Pirate pattern, with Titanic's rule that a state change is committed before it
/// is acknowledged). This is the socket loop only; the decisions are `CoordinatorCore`'s.
public final class Coordinator {
    public let store: Store
    public let runDirectory: RunDirectory
    public private(set) var endpoint: String = ""
    private let core: CoordinatorCore
    private let context: Context
    private let router: Socket
    private var authenticator: CurveAuthenticator?
    private var stopRequested = false

    /// Counters for the dispatch benchmark and the logs.
    public var droppedFrames: Int { core.droppedFrames }
    public var resultsRecorded: Int { core.resultsRecorded }
    public var workerCount: Int { core.workerCount }

    /// Opens a coordinator on a run directory whose store already holds a sweep. Without
    /// `security`, only a loopback endpoint may be bound.
    public init(runDirectory: URL, bind: String, security: CoordinatorSecurity? = nil,
                logger: Logger = Logger(label: "coordinator")) throws {
        self.runDirectory = RunDirectory(runDirectory)
        try Coordinator.checkSecurity(bind: bind, security: security)
        store = try self.runDirectory.openStore()
        let artifacts = try ArtifactStore(directory: self.runDirectory.artifacts)
        context = try Context()
        router = try context.socket(.router)
        try router.setLinger(0)
        try router.setRouterHandover(true)
        try router.setRouterMandatory(false)
        try router.setSendHighWaterMark(100_000)
        try router.setReceiveHighWaterMark(100_000)
        authenticator = try Coordinator.secure(router, context: context, bind: bind, security: security, logger: logger)
        try router.bind(bind)
        endpoint = try router.lastEndpoint
        core = try CoordinatorCore(store: store, artifacts: artifacts, endpoint: endpoint, logger: logger,
                                   now: Date().timeIntervalSince1970)
        logger.info("coordinator listening on \(endpoint)")
    }

    public func stop() { stopRequested = true }

    deinit { authenticator?.stop() }

    /// Serves until `shouldContinue` says otherwise (checked between turns) or `stop()` is called.
    public func run(while shouldContinue: () -> Bool = { true }) throws {
        while !stopRequested && shouldContinue() {
            try step(timeout: CoordinatorTiming.pollMilliseconds)
        }
        router.close()
        authenticator?.stop()
    }

    /// One turn: wait up to `timeout` ms for messages, hand every message waiting to the core,
    /// then send its replies (the core has committed what they say).
    public func step(timeout: Int) throws {
        var batch: [(identity: Data, frames: [Data])] = []
        if try poll([router], timeout: timeout)[0] {
            while batch.count < CoordinatorTiming.maxBatch, let frames = try router.receive(dontWait: true) {
                batch.append((frames[0], Array(frames.dropFirst())))
            }
        }
        for (identity, message) in try core.process(batch, now: Date().timeIntervalSince1970) {
            _ = try? router.send([identity] + message.encoded(), dontWait: true)
        }
    }
}
