namespace Cairn.Testing;

/// <summary>A root key and a publishing key it certified, made with the real CLI (docs/security.md).</summary>
public sealed record SigningKeys(string RootKey, string RootPublicKey, string PublishingKey)
{
    /// <summary>The environment that makes cairn sign with the publishing key.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["CAIRN_SIGNING_KEY"] = PublishingKey };

    public static async Task<SigningKeys> CreateAsync(string directory)
    {
        var keys = new SigningKeys(System.IO.Path.Combine(directory, "root.key"), System.IO.Path.Combine(directory, "root.key.pub"), System.IO.Path.Combine(directory, "pub.key"));
        await Exec.CairnOkAsync("key", "generate", "--root", "-o", keys.RootKey);
        await Exec.CairnOkAsync("key", "generate", "--publishing", "-o", keys.PublishingKey);
        await Exec.CairnOkAsync("key", "certify", keys.PublishingKey, "--root", keys.RootKey);
        return keys;
    }
}
