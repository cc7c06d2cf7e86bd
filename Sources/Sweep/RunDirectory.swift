import Foundation

/// A sweep's run directory: the store, the coordinator's artifacts, the report, the logs and
/// working files of local workers. Only `create` makes directories; everything else wants
/// a run directory that already holds a sweep.
public struct RunDirectory {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    /// `runs/NAME` under the current directory, where a sweep runs unless told otherwise.
    public static func defaultURL(forSweep name: String) -> URL {
        URL(fileURLWithPath: "runs").appendingPathComponent(name)
    }

    public var store: URL { url.appendingPathComponent("store.sqlite") }
    public var artifacts: URL { url.appendingPathComponent("artifacts") }
    public var report: URL { url.appendingPathComponent("report") }
    public var logs: URL { url.appendingPathComponent("logs") }
    /// Per-worker working directories of `circuitry run`'s local workers.
    public var work: URL { url.appendingPathComponent("work") }
    /// The artifact cache the local workers share.
    public var workerCache: URL { url.appendingPathComponent("worker-cache") }

    /// The store of the sweep held here; creates nothing, and names what is missing.
    public func openStore(readOnly: Bool = false) throws -> Store {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SweepError("no run directory at \(url.path)")
        }
        guard FileManager.default.fileExists(atPath: store.path) else {
            throw SweepError("\(url.path) holds no sweep (no \(store.lastPathComponent)); start one with `circuitry run SWEEP.yaml --run-dir \(url.path)`")
        }
        return try Store(url: store, mode: readOnly ? .readOnly : .existing)
    }

    /// Creates the directory and the store of a new sweep, or checks that it already holds this
    /// sweep; returns whether it was new.
    @discardableResult
    public func create(spec: SweepSpec) throws -> Bool {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw fileError("cannot create the run directory", url, error)
        }
        let store = try Store(url: store, mode: .create)
        return try store.write { tx in
            if try tx.hasSweep() {
                let existing = try tx.sweepSpec()
                guard existing == spec else {
                    throw SweepError("\(url.path) already holds a different sweep (\(existing.name)); use another --run-dir or resume it")
                }
                return false
            }
            try tx.createSweep(spec, shards: plan(spec), now: Date().timeIntervalSince1970)
            return true
        }
    }
}

extension RunDirectory {
    /// Grows the sweep held here to `spec` (more seeds, widths, densities): adds the shards it
    /// lacks and keeps every finished one; see `StoreTransaction.extendSweep`. Returns the shards
    /// added, which the next `resume` or `coordinator --resume` runs.
    public func extend(to spec: SweepSpec) throws -> [String] {
        let store = try openStore()
        return try store.write { tx in try tx.extendSweep(spec, shards: plan(spec), now: Date().timeIntervalSince1970) }
    }
}

/// A file system error as a sentence naming the file: errno's words rather than Foundation's
/// ("There isn't enough space" becomes "No space left on device").
func fileError(_ what: String, _ url: URL, _ error: Error) -> SweepError {
    if let sweepError = error as? SweepError { return sweepError }
    let nsError = error as NSError
    var reason = nsError.localizedDescription
    if let posix = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(posix.code)))
    } else if nsError.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(nsError.code)))
    } else if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileWriteOutOfSpaceError {
        reason = String(cString: strerror(ENOSPC))
    }
    return SweepError("\(what) \(url.path): \(reason)")
}

/// An error for the user: Foundation's file errors name their file and say errno's words; any
/// other error is its own description.
func describe(_ error: Error) -> String {
    let nsError = error as NSError
    guard nsError.domain == NSCocoaErrorDomain || nsError.domain == NSPOSIXErrorDomain else { return "\(error)" }
    let path = (nsError.userInfo[NSFilePathErrorKey] as? String) ?? (nsError.userInfo[NSURLErrorKey] as? URL)?.path
    guard let path else { return "\(error)" }
    return fileError("cannot use", URL(fileURLWithPath: path), error).description
}

/// The current errno as a sentence naming the file.
func errnoError(_ what: String, _ url: URL, _ code: Int32 = errno) -> SweepError {
    SweepError("\(what) \(url.path): \(String(cString: strerror(code)))")
}
