import ArgumentParser
import Foundation

/// Checks of paths and endpoints given on the command line, made before any work starts, so a
/// mistake is an error about the argument instead of a failure an hour later.
enum ArgumentChecks {
    /// A sweep file must be a readable file; a directory is most likely a run directory.
    static func sweepFile(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("no sweep file at \(path)")
        }
        if isDirectory.boolValue {
            throw ValidationError("\(path) is a directory, not a sweep file (YAML); to continue the run in a run directory, use `circuitry resume \(path)`")
        }
    }

    /// The directory an output file goes into must exist and be writable.
    static func outputFile(_ path: String, option: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let parent = directory.isEmpty ? "." : directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(option) \(path): the directory \(parent) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: parent) else {
            throw ValidationError("\(option) \(path): the directory \(parent) is not writable")
        }
    }

    /// A ZeroMQ endpoint names its transport: `127.0.0.1:5555` alone is not one.
    static func endpoint(_ endpoint: String, option: String) throws {
        guard ["tcp://", "ipc://", "inproc://"].contains(where: endpoint.hasPrefix) else {
            let example = endpoint.contains("://") ? "tcp://HOST:PORT" : "tcp://\(endpoint)"
            throw ValidationError("\(option) \(endpoint) is not an endpoint: it needs a transport, e.g. \(example)")
        }
    }
}
