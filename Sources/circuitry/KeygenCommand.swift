import ArgumentParser
import Foundation
import Sweep

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (public).",
        discussion: """
            The coordinator takes its NAME.key with --key; workers take the coordinator's NAME.pub \
            with --server-key. Each worker takes its own NAME.key with --key, and its NAME.pub goes \
            into the coordinator's --authorized-keys file (append it as it is).
            """)

    @Option(help: "Directory to write the key files into (created if missing).")
    var out: String

    @Option(help: "Base name of the files and the key's name in authorised-keys files (default: this host's name).")
    var name: String?

    @Flag(help: "Replace existing key files of that name.")
    var force = false

    func run() throws {
        let keyName = name ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "circuitry"
        let written = try CurveKeyFile.generate(name: keyName, to: URL(fileURLWithPath: out), overwrite: force)
        print("secret key: \(written.secret.path)")
        print("public key: \(written.public.path)")
        print(written.publicKey)
    }
}
