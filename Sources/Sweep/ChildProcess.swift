import Foundation

/// A shard's child process, started with posix_spawn and reaped with
/// waitpid(WNOHANG) by the worker loop itself: no helper threads, and its
/// output goes to a log file that the worker reads as it grows.
final class ChildProcess {
    let pid: pid_t
    private let log: FileHandle
    private let lines = LineBuffer()

    enum Exit: Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    init(executable: URL, arguments: [String], logFile: URL) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        guard FileManager.default.createFile(atPath: logFile.path, contents: nil),
              let handle = FileHandle(forReadingAtPath: logFile.path) else {
            throw SweepError("cannot create the shard log \(logFile.path)")
        }
        log = handle
        posix_spawn_file_actions_addopen(&actions, 1, logFile.path, O_WRONLY | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable.path, &actions, nil, argv, environ)
        guard rc == 0 else {
            throw SweepError("cannot start \(executable.path): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
    }

    /// Complete lines written since the last call (and the unterminated rest once `final`).
    func newLines(final: Bool = false) -> [String] {
        var result = lines.feed(log.readDataToEndOfFile())
        if final, let rest = lines.flush() { result.append(rest) }
        return result
    }

    /// How the process ended, once it has; nil while it runs.
    func poll() -> Exit? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        guard rc == pid else { return nil }
        // WIFSIGNALED / WTERMSIG / WEXITSTATUS, which Swift does not import as functions.
        let signal = status & 0x7f
        return signal != 0 ? .signalled(signal) : .exited((status >> 8) & 0xff)
    }

    func kill() { _ = Glibc.kill(pid, SIGKILL) }

    deinit { try? log.close() }
}

/// Splits output into lines.
final class LineBuffer {
    private var pending = Data()

    func feed(_ data: Data) -> [String] {
        pending.append(data)
        var lines: [String] = []
        while let newline = pending.firstIndex(of: 10) {
            lines.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
            pending.removeSubrange(pending.startIndex...newline)
        }
        return lines
    }

    func flush() -> String? {
        defer { pending.removeAll() }
        return pending.isEmpty ? nil : String(decoding: pending, as: UTF8.self)
    }
}
