import Foundation
import Logging
import ZeroMQ

/// CURVE key files.
///
/// `NAME.key` holds a key pair and is readable by its owner only:
///
///     # Circuitry CURVE key pair "NAME": keep this file secret.
///     public-key = "<40 Z85 characters>"
///     secret-key = "<40 Z85 characters>"
///
/// `NAME.pub` holds the public key as one line of an authorised-keys file
/// (`<key> NAME`), so it can be appended to one as it is.
public enum CurveKeyFile {
    public static let secretExtension = "key"
    public static let publicExtension = "pub"

    /// Writes `NAME.key` (mode 0600) and `NAME.pub` into `directory`; refuses to
    /// overwrite existing files unless `overwrite` is set.
    @discardableResult
    public static func write(_ keyPair: CurveKeyPair, name: String, to directory: URL,
                             overwrite: Bool = false) throws -> (secret: URL, public: URL) {
        guard !name.isEmpty, !name.contains("/"), !name.contains(where: { $0.isWhitespace }) else {
            throw SweepError("key name '\(name)' must be non-empty, without '/' or spaces")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let secretURL = directory.appendingPathComponent("\(name).\(secretExtension)")
        let publicURL = directory.appendingPathComponent("\(name).\(publicExtension)")
        for url in [secretURL, publicURL] where FileManager.default.fileExists(atPath: url.path) {
            guard overwrite else { throw SweepError("\(url.path) already exists (use --force to replace it)") }
            try FileManager.default.removeItem(at: url)
        }
        let secretText = """
            # Circuitry CURVE key pair "\(name)": keep this file secret.
            public-key = "\(keyPair.publicKey)"
            secret-key = "\(keyPair.secretKey)"

            """
        try writeNew(secretText, to: secretURL, mode: 0o600)
        let publicText = """
            # Circuitry CURVE public key "\(name)": append this file to a coordinator's authorised-keys file,
            # or give it to workers as --server-key.
            \(keyPair.publicKey) \(name)

            """
        try writeNew(publicText, to: publicURL, mode: 0o644)
        return (secretURL, publicURL)
    }

    /// Makes a new key pair and writes its files; returns them and the public key.
    public static func generate(name: String, to directory: URL,
                                overwrite: Bool = false) throws -> (secret: URL, public: URL, publicKey: String) {
        let keyPair = try CurveKeyPair.generate()
        let files = try write(keyPair, name: name, to: directory, overwrite: overwrite)
        return (files.secret, files.public, keyPair.publicKey)
    }

    /// Creates the file with its final mode, so a secret is never readable by others, not even briefly.
    private static func writeNew(_ text: String, to url: URL, mode: mode_t) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard descriptor >= 0 else { throw SweepError("\(url.path): cannot create (\(String(cString: strerror(errno))))") }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    /// Reads a key pair from a `.key` file and checks that its two keys belong together.
    public static func readKeyPair(_ url: URL) throws -> CurveKeyPair {
        let text = try readText(url)
        var fields: [String: String] = [:]
        for (number, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, ["public-key", "secret-key"].contains(parts[0]) else {
                throw SweepError("\(url.path):\(number + 1): expected public-key = \"...\" or secret-key = \"...\"")
            }
            let value = parts[1].hasPrefix("\"") && parts[1].hasSuffix("\"") && parts[1].count >= 2
                ? String(parts[1].dropFirst().dropLast()) : parts[1]
            guard isCurveKey(value) else {
                throw SweepError("\(url.path):\(number + 1): \(parts[0]) is not a 40-character Z85 key")
            }
            fields[parts[0]] = value
        }
        guard let secret = fields["secret-key"] else {
            throw SweepError("\(url.path): no secret-key; is this a public key file? The secret key is in NAME.\(secretExtension)")
        }
        let derived = try CurveKeyPair.publicKey(forSecret: secret)
        if let stated = fields["public-key"], stated != derived {
            throw SweepError("\(url.path): public-key does not belong to secret-key")
        }
        return CurveKeyPair(publicKey: derived, secretKey: secret)
    }

    /// A warning when a secret key file is readable by others than its owner.
    public static func permissionWarning(_ url: URL) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let mode = (attributes[.posixPermissions] as? NSNumber)?.uint16Value, mode & 0o077 != 0 else { return nil }
        return "\(url.path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it"
    }

    /// A server's public key from a Z85 string, a `.pub` file (one key line) or a `.key` file.
    public static func readPublicKey(_ fileOrKey: String) throws -> String {
        if isCurveKey(fileOrKey) && !FileManager.default.fileExists(atPath: fileOrKey) { return fileOrKey }
        let url = URL(fileURLWithPath: fileOrKey)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SweepError("\(fileOrKey) is neither a file nor a 40-character Z85 public key")
        }
        if try readText(url).contains("secret-key") { return try readKeyPair(url).publicKey }
        let keys = try AuthorizedKeys(contentsOf: url).entries
        guard keys.count == 1 else {
            throw SweepError("\(url.path): expected exactly one public key, found \(keys.count)")
        }
        return keys[0].key
    }

    static func readText(_ url: URL) throws -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw SweepError("\(url.path): cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw SweepError("\(url.path): not UTF-8 text") }
        return text
    }
}

/// Whether a string is a Z85-encoded 32-byte CURVE key.
public func isCurveKey(_ text: String) -> Bool {
    text.utf8.count == 40 && Z85.decode(text)?.count == 32
}

/// The worker public keys a coordinator accepts: one Z85 key per line, optionally
/// followed by a name; empty lines and lines starting with `#` are ignored (a key
/// may itself start with `#`: a line whose first word is a valid key is a key).
public struct AuthorizedKeys: Equatable {
    public struct Entry: Equatable {
        public let key: String
        public let name: String?
    }

    public let entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public init(contentsOf url: URL) throws {
        try self.init(parsing: try CurveKeyFile.readText(url), file: url.path)
    }

    public init(parsing text: String, file: String) throws {
        var entries: [Entry] = []
        // Character.isNewline also matches "\r\n", which Swift reads as one character.
        for (number, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let words = line.split(whereSeparator: \.isWhitespace)
            guard let first = words.first.map(String.init) else { continue }
            if isCurveKey(first) {
                let name = words.dropFirst().joined(separator: " ")
                entries.append(Entry(key: first, name: name.isEmpty ? nil : name))
            } else if !first.hasPrefix("#") {
                throw SweepError("\(file):\(number + 1): '\(first.prefix(48))' is not a 40-character Z85 public key")
            }
        }
        self.entries = entries
    }

    /// The entry of a key, if it is authorised.
    public func entry(for key: String) -> Entry? { entries.first { $0.key == key } }
}

/// Whether an endpoint can only be reached from this machine: loopback TCP
/// addresses (127.0.0.0/8, localhost, ::1, the `lo` interface), ipc:// and inproc://.
public func isLoopbackEndpoint(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
    guard endpoint.hasPrefix("tcp://") else { return false }
    var address = String(endpoint.dropFirst("tcp://".count))
    // A connect endpoint may name its source address first: "tcp://source;host:port".
    if let separator = address.lastIndex(of: ";") { address = String(address[address.index(after: separator)...]) }
    guard let colon = address.lastIndex(of: ":") else { return false }
    var host = String(address[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    if host == "localhost" || host == "lo" || host == "::1" { return true }
    let octets = host.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
    return octets.count == 4 && octets.allSatisfy { $0 != nil } && octets[0] == 127
}

/// The coordinator's CURVE settings: its key pair and the workers it accepts.
public struct CoordinatorSecurity {
    public var keyPair: CurveKeyPair
    /// Re-read when it changes, so workers can be added without a restart.
    public var authorizedKeysFile: URL

    public init(keyPair: CurveKeyPair, authorizedKeysFile: URL) {
        self.keyPair = keyPair
        self.authorizedKeysFile = authorizedKeysFile
    }

    /// Reads both files, so a mistake in either stops the coordinator before it binds.
    public init(keyFile: URL, authorizedKeysFile: URL) throws {
        keyPair = try CurveKeyFile.readKeyPair(keyFile)
        self.authorizedKeysFile = authorizedKeysFile
        _ = try AuthorizedKeys(contentsOf: authorizedKeysFile)
    }
}

/// A worker's CURVE settings: its own key pair and the coordinator's public key.
public struct WorkerSecurity {
    public var keyPair: CurveKeyPair
    public var serverPublicKey: String

    public init(keyPair: CurveKeyPair, serverPublicKey: String) {
        self.keyPair = keyPair
        self.serverPublicKey = serverPublicKey
    }

    public init(keyFile: URL, serverKey: String) throws {
        keyPair = try CurveKeyFile.readKeyPair(keyFile)
        serverPublicKey = try CurveKeyFile.readPublicKey(serverKey)
    }
}

/// Answers the ZAP requests of a CURVE server: only keys of the authorised-keys
/// file get in. Refusals are logged with the key and the peer's address, once per
/// key and address a minute, since a refused peer keeps reconnecting.
final class CurveAuthenticator {
    static let domain = "circuitry"

    private let file: URL
    private let logger: Logger
    private var handler: ZAPHandler?
    // Touched only on the ZAP handler's thread.
    private var keys: AuthorizedKeys
    private var fileStamp: Date?
    private var lastRefusalLogged: [String: Double] = [:]

    init(context: Context, authorizedKeysFile: URL, logger: Logger) throws {
        file = authorizedKeysFile
        self.logger = logger
        keys = try AuthorizedKeys(contentsOf: file)
        fileStamp = CurveAuthenticator.modificationDate(file)
        // Held strongly until stop(): the handler's thread may still be answering a request.
        handler = try ZAPHandler(context: context) { request in self.authorize(request) }
    }

    var authorizedCount: Int { keys.entries.count }

    func stop() {
        handler?.stop()
        handler = nil
    }

    private static func modificationDate(_ url: URL) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
    }

    private func reloadIfChanged() {
        let stamp = CurveAuthenticator.modificationDate(file)
        guard stamp != fileStamp else { return }
        fileStamp = stamp
        do {
            keys = try AuthorizedKeys(contentsOf: file)
            logger.info("reloaded \(file.path): \(keys.entries.count) authorised keys")
        } catch {
            logger.error("kept the previous authorised keys: \(error)")
        }
    }

    private func authorize(_ request: ZAPHandler.Request) -> Bool {
        guard request.mechanism == "CURVE", let raw = request.credentials.first, raw.count == 32,
              let key = Z85.encode(raw) else {
            logger.warning("refused a \(request.mechanism) connection from \(request.address): CURVE is required")
            return false
        }
        reloadIfChanged()
        if keys.entry(for: key) != nil { return true }
        let now = Date().timeIntervalSince1970
        let peer = "\(key) \(request.address)"
        if now - (lastRefusalLogged[peer] ?? 0) >= 60 {
            lastRefusalLogged[peer] = now
            logger.warning("refused worker key \(key) from \(request.address): not in \(file.path)")
        }
        return false
    }
}

extension Coordinator {
    /// Refuses an endpoint beyond loopback without CURVE keys; called before anything is created.
    public static func checkSecurity(bind: String, security: CoordinatorSecurity?) throws {
        guard security == nil, !isLoopbackEndpoint(bind) else { return }
        throw SweepError("""
            refusing to bind \(bind) without CURVE keys: every machine that reaches it could take and \
            report shards. Give --key FILE and --authorized-keys FILE (make keys with `circuitry keygen`), \
            or bind a loopback address such as tcp://127.0.0.1:5555
            """)
    }

    /// Makes the ROUTER a CURVE server guarded by the authorised keys, or, without
    /// keys, checks that the endpoint is loopback. Call before binding.
    static func secure(_ router: Socket, context: Context, bind: String, security: CoordinatorSecurity?,
                       logger: Logger) throws -> CurveAuthenticator? {
        try checkSecurity(bind: bind, security: security)
        guard let security else { return nil }
        // The handler must listen before the socket accepts its first connection.
        let authenticator = try CurveAuthenticator(context: context, authorizedKeysFile: security.authorizedKeysFile,
                                                   logger: logger)
        try router.setZAPDomain(CurveAuthenticator.domain)
        try router.makeCurveServer(secretKey: security.keyPair.secretKey)
        logger.info("CURVE on: server key \(security.keyPair.publicKey), \(authenticator.authorizedCount) authorised worker keys")
        return authenticator
    }
}

extension Worker {
    /// Makes the DEALER a CURVE client when the worker has keys, and watches its handshakes.
    static func secure(_ socket: Socket, security: WorkerSecurity?, endpoint: String,
                       logger: Logger) throws -> HandshakeWatch {
        if let security {
            try socket.makeCurveClient(serverPublicKey: security.serverPublicKey, keyPair: security.keyPair)
        }
        return try HandshakeWatch(socket, endpoint: endpoint, publicKey: security?.keyPair.publicKey, logger: logger)
    }
}

/// Turns a worker socket's handshake failures into log lines that say what to fix.
final class HandshakeWatch {
    private let monitor: SocketMonitor
    private let endpoint: String
    private let publicKey: String?
    private let logger: Logger
    private var lastLogged: [String: Double] = [:]

    init(_ socket: Socket, endpoint: String, publicKey: String?, logger: Logger) throws {
        monitor = try SocketMonitor(socket)
        self.endpoint = endpoint
        self.publicKey = publicKey
        self.logger = logger
    }

    /// Logs the events waiting; each kind of failure at most every 30 seconds.
    func drain() {
        while let event = monitor.nextEvent() {
            let message: String
            switch event.kind {
            case .handshakeFailedAuthentication:
                message = publicKey.map {
                    "the coordinator at \(endpoint) refused this worker's key \($0) (ZAP status \(event.value)): "
                        + "add the worker's .pub file to the coordinator's authorised-keys file"
                } ?? "the coordinator at \(endpoint) requires CURVE keys (ZAP status \(event.value)): give --key and --server-key"
            case .handshakeFailedProtocol, .handshakeFailedOther:
                // A protocol failure carries libzmq's protocol error code, any other one an errno.
                let detail = event.kind == .handshakeFailedProtocol
                    ? "protocol error 0x\(String(event.value, radix: 16))" : String(cString: strerror(Int32(event.value)))
                message = publicKey == nil
                    ? "handshake with \(endpoint) failed (\(detail)): the coordinator probably requires CURVE; give --key and --server-key"
                    : "handshake with \(endpoint) failed (\(detail)): check --server-key, and that the coordinator uses CURVE"
            default:
                continue
            }
            let now = Date().timeIntervalSince1970
            guard now - (lastLogged[message] ?? 0) >= 30 else { continue }
            lastLogged[message] = now
            logger.error("\(message)")
        }
    }

    func close() { monitor.close() }
}
