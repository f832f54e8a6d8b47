using Cairn.Core;

namespace Cairn.Trust.Provenance;

/// <summary>Which key signs a build's attestations (docs/security.md, "Provenance").</summary>
public static class BuilderKeys
{
    /// <summary>This host's own builder key, in the state directory ($CAIRN_STATE): generated at the first build.</summary>
    public const string LocalKeyFile = "builder.key";

    public static string LocalKeyPath(string stateDirectory) => Path.Combine(stateDirectory, LocalKeyFile);

    /// <summary>
    /// The given key file (a publishing key — the repository's — or a builder key — a gateway site's); without one,
    /// this host's builder key, generated once (0600) with its .pub beside it for verifiers' policies. A root key
    /// never signs builds: it stays offline.
    /// </summary>
    public static KeyPair Load(string? keyPath, string stateDirectory)
    {
        if (keyPath is { Length: > 0 })
        {
            var key = Keys.ReadPrivate(keyPath);
            if (key.Kind == KeyKind.Root)
            {
                key.Dispose();
                throw new CairnException(ErrorCode.TrustKeyInvalid, $"'{keyPath}' is a root key; a root key does not sign builds",
                    "give the repository's publishing key, or a builder key (cairn key generate --builder)");
            }

            return key;
        }

        var path = LocalKeyPath(stateDirectory);
        if (File.Exists(path)) return Keys.ReadPrivate(path, KeyKind.Builder);
        Directory.CreateDirectory(stateDirectory);
        var pair = Keys.Generate(KeyKind.Builder);
        Keys.WritePrivate(pair, path);
        Keys.WritePublic(pair.Public, KeyKind.Builder, path + ".pub");
        return pair;
    }
}
