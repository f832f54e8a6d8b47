using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Repository.Backends;
using Cairn.Repository.FileSystem;
using Cairn.Trust;

namespace Cairn.Cli.Commands.Key;

/// <summary>cairn key: the root and publishing keys of signed repositories (docs/security.md).</summary>
public static class KeyCommand
{
    public static Command Create() =>
        new("key", "Manage signing keys: a root key certifies publishing keys, which sign revisions; clients trust the root")
        {
            Generate(), Certify(), Revoke(), Resign(), Show(),
        };

    private static Command Generate()
    {
        var root = new Option<bool>("--root") { Description = "A root key: kept offline, certifies publishing keys; its .pub is what clients trust" };
        var publishing = new Option<bool>("--publishing") { Description = "A publishing key: signs revisions once certified by the root" };
        var builder = new Option<bool>("--builder") { Description = "A builder key: signs build attestations (a gateway site's key: register its .pub with 'cairn gateway site add --key')" };
        var output = new Option<string>("--output", "-o") { Description = "Private key file to write (mode 0600); the public key goes to FILE.pub", Required = true };
        var command = new Command("generate", "Generate an Ed25519 key pair") { root, publishing, builder, output };
        command.SetHandler((ctx, ct) =>
        {
            if (new[] { ctx.Parse.GetValue(root), ctx.Parse.GetValue(publishing), ctx.Parse.GetValue(builder) }.Count(b => b) != 1)
            {
                throw new CairnException(ErrorCode.Usage, "give exactly one of --root, --publishing and --builder", "e.g. cairn key generate --root -o root.key");
            }

            var path = ctx.Parse.GetValue(output)!;
            if (File.Exists(path))
            {
                throw new CairnException(ErrorCode.Usage, $"'{path}' exists", "keys are never overwritten: choose another file");
            }

            var kind = ctx.Parse.GetValue(root) ? KeyKind.Root : ctx.Parse.GetValue(builder) ? KeyKind.Builder : KeyKind.Publishing;
            using var pair = Keys.Generate(kind);
            Keys.WritePrivate(pair, path);
            Keys.WritePublic(pair.Public, kind, path + ".pub");
            ctx.Write(new KeyGenerated(kind, pair.KeyId, path, path + ".pub"), CliJson.Default.KeyGenerated,
                o => o.WriteLine($"{kind.ToString().ToLowerInvariant()} key {pair.KeyId}\n  private: {path} (0600)\n  public:  {path}.pub"));
            return Task.FromResult(0);
        });
        return command;
    }

    private static Command Certify()
    {
        var rootKey = new Option<string>("--root") { Description = "The root's private key file", Required = true };
        var key = new Argument<string>("publishing-key") { Description = "Publishing private key file; its certificate is added to it" };
        var days = new Option<int>("--days") { Description = "Days the certificate is valid", DefaultValueFactory = _ => 90 };
        var name = new Option<string?>("--name") { Description = "Name recorded in the certificate (default: the file name)" };
        var repositories = new Option<string[]>("--repository") { Description = "Repository names the key may sign (repeatable; default: any under this root)", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("certify", "Certify a publishing key with the root key, until an expiry") { rootKey, key, days, name, repositories };
        command.SetHandler((ctx, ct) =>
        {
            if (ctx.Parse.GetValue(days) <= 0) throw new CairnException(ErrorCode.Usage, "--days must be positive", "e.g. --days 90");
            var path = ctx.Parse.GetValue(key)!;
            using var root = Keys.ReadPrivate(ctx.Parse.GetValue(rootKey)!, KeyKind.Root);
            using var publishing = Keys.ReadPrivate(path, KeyKind.Publishing);
            var now = ctx.Time.GetUtcNow();
            var expires = now.AddDays(ctx.Parse.GetValue(days));
            var cert = Keys.Certify(root, publishing.Public, ctx.Parse.GetValue(name) ?? Path.GetFileNameWithoutExtension(path), now, expires,
                ctx.Parse.GetValue(repositories) ?? []);
            Keys.WritePrivate(publishing, path, cert, root.Public);
            ctx.Write(new KeyCertified(publishing.KeyId, root.KeyId, expires), CliJson.Default.KeyCertified,
                o => o.WriteLine($"publishing key {publishing.KeyId} certified by root {root.KeyId} until {expires:u}"));
            return Task.FromResult(0);
        });
        return command;
    }

    private static Command Revoke()
    {
        var rootKey = new Option<string>("--root") { Description = "The root's private key file", Required = true };
        var keys = new Argument<string[]>("key") { Description = "Publishing keys to revoke: key files (.key or .pub) or ids (ed25519:HEX)", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "Revocation list to update (default: revocations.json of --repo DIR, served to clients)" };
        var reason = new Option<string?>("--reason") { Description = "Why, recorded in the list" };
        var command = new Command("revoke", "Add publishing keys to the root-signed revocation list clients honour") { rootKey, keys, output, reason };
        command.SetHandler((ctx, ct) =>
        {
            using var root = Keys.ReadPrivate(ctx.Parse.GetValue(rootKey)!, KeyKind.Root);
            var path = ctx.Parse.GetValue(output) ?? (ctx.Location is DirectoryLocation directory
                ? Path.Combine(directory.Path, FileSystemLayout.Revocations)
                : throw new CairnException(ErrorCode.Usage, "no revocation list given", "pass -o FILE or --repo DIR"));
            RevocationList? previous = null;
            if (File.Exists(path))
            {
                previous = Keys.ReadRevocations(File.ReadAllBytes(path), root.Public)
                    ?? throw new CairnException(ErrorCode.TrustKeyInvalid, $"'{path}' is not a revocation list signed by this root", "give the root that signed it, or another -o file");
            }

            var ids = ctx.Parse.GetValue(keys)!.Select(k => Keys.IsFingerprint(k) ? k : Keys.Fingerprint(Keys.ReadPublic(k))).ToList();
            var list = Keys.Revoke(root, previous, ids, ctx.Parse.GetValue(reason), ctx.Time.GetUtcNow());
            var bytes = CairnJson.SerializeIndented(list, TrustJson.Default.Envelope);
            var tmp = path + ".tmp";
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, path, overwrite: true);
            var serial = list.Read(TrustJson.Default.RevocationList, "revocation list").Serial;
            ctx.Write(new KeysRevoked(path, serial, ids), CliJson.Default.KeysRevoked, o => o.WriteLine($"revoked {string.Join(", ", ids)}: {path} (serial {serial})"));
            return Task.FromResult(0);
        });
        return command;
    }

    private static Command Resign()
    {
        var days = new Option<int?>("--days") { Description = "Days until the new signature expires (default: 7)" };
        var command = new Command("resign", "Sign the head of a repository (directory or s3://) again with a fresh expiry (run from cron; needs --signing-key)") { days };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Location is not WritableLocation location) throw new CairnException(ErrorCode.Usage, "cairn key resign signs the repository itself, not a server's copy of it", "pass --repo DIR or --repo s3://…");
            var keyPath = ctx.Parse.GetValue(GlobalOptions.SigningKey) ?? Environment.GetEnvironmentVariable("CAIRN_SIGNING_KEY")
                ?? throw new CairnException(ErrorCode.Usage, "no signing key given", "pass --signing-key FILE or set CAIRN_SIGNING_KEY");
            var lifetime = ctx.Parse.GetValue(days) is { } d ? TimeSpan.FromDays(d) : (TimeSpan?)null;
            using var signer = ManifestSigner.Load(keyPath, ctx.Time, lifetime);
            await using var repo = await RepositoryOpener.OpenWritableAsync(location, ctx.OpenSettings(), ct);
            var store = repo.Revisions as Cairn.Repository.IResignableRevisionStore
                ?? throw new CairnException(ErrorCode.Usage, $"the repository at {ctx.RepositoryPath} cannot be signed here", "pass --repo DIR or --repo s3://…");
            var manifest = await store.ResignHeadAsync(signer, ct);
            var expires = ctx.Time.GetUtcNow() + signer.Lifetime;
            ctx.Write(new KeyResigned(manifest.Revision, signer.Certificate.KeyId), CliJson.Default.KeyResigned,
                o => o.WriteLine($"revision {manifest.Revision} signed by {signer.Certificate.KeyId} ('{signer.Certificate.Name}'), expires by {expires.ToString("u", CultureInfo.InvariantCulture)}"));
            return 0;
        });
        return command;
    }

    private static Command Show()
    {
        var file = new Argument<string>("file") { Description = "A key file (.key or .pub)" };
        var command = new Command("show", "Print a key's kind, fingerprint (what --trust accepts) and certificate") { file };
        command.SetHandler((ctx, ct) =>
        {
            var path = ctx.Parse.GetValue(file)!;
            var text = JsonSerializer.Deserialize(File.ReadAllBytes(path), TrustJson.Default.PrivateKeyFile);
            var id = Keys.Fingerprint(Keys.ReadPublic(path));
            var cert = text?.Certificate?.Read(TrustJson.Default.PublishingCertificate, "certificate");
            ctx.Write(new KeyShown(text?.Kind, id, cert), CliJson.Default.KeyShown, o =>
            {
                o.WriteLine($"{text?.Kind.ToString().ToLowerInvariant()} key {id}");
                if (cert is not null) o.WriteLine($"  certified as '{cert.Name}' from {cert.NotBefore:u} to {cert.Expires:u}{(cert.Repositories.Count > 0 ? " for " + string.Join(", ", cert.Repositories) : "")}");
            });
            return Task.FromResult(0);
        });
        return command;
    }
}

// What cairn key prints with --json: user-visible, keep names and order.

public sealed record KeyGenerated(KeyKind Kind, string KeyId, string PrivateKey, string PublicKey);

public sealed record KeyCertified(string KeyId, string Root, DateTimeOffset Expires);

public sealed record KeysRevoked(string Path, long Serial, IReadOnlyList<string> Revoked);

public sealed record KeyResigned(long Revision, string KeyId);

public sealed record KeyShown(KeyKind? Kind, string KeyId, PublishingCertificate? Certificate);
