using Cairn.Core;
using Cairn.Trust;
using Cairn.Trust.Provenance;
using NSec.Cryptography;

namespace Cairn.Web;

/// <summary>
/// A product's signed in-toto statements (docs/format/provenance.md) on its page: who built it, the verdict and the
/// tests each builder attests, and whether each signature verifies. The gateway checks signatures against the keys
/// sites registered with it; cairn serve knows no keys and says so (cairn verify --provenance POLICY checks them).
/// </summary>
internal static class ProvenancePanel
{
    public static async Task<ProvenanceView?> ReadAsync(PageContext page, Manifest manifest, ProductRecord product, CancellationToken ct)
    {
        if (product.Attestations is not { } path) return null;
        IReadOnlyList<DsseEnvelope> envelopes;
        IReadOnlyList<AttestationView> views;
        try
        {
            if (await ProductProvenance.ReadAsync(page.Options.Repository, manifest, product, ct) is not { } bytes) return null;
            envelopes = AttestationBundle.Read(bytes, path);
            views = AttestationBundle.Describe(bytes, path);
        }
        catch (CairnException e)
        {
            // A damaged bundle is shown as such; the rest of the page still answers.
            return new ProvenanceView(path, null, [], $"{e.CodeName}: {e.Message}");
        }

        var keys = new List<(string Site, PublicKey Key)>();
        if (page.Options.Coordination is { } store)
        {
            foreach (var site in await store.ListSitesAsync(ct))
            {
                if (Keys.DecodePublic(site.PublicKey) is { } key) keys.Add((site.Name, key));
            }
        }

        var rows = new List<AttestationRow>();
        for (var i = 0; i < envelopes.Count; i++)
        {
            var v = views[i];
            var signer = keys.FirstOrDefault(k => Dsse.IsSignedBy(envelopes[i], k.Key)).Site;
            rows.Add(new AttestationRow(
                v.PredicateType == InToto.SlsaProvenanceType ? "provenance" : v.PredicateType == InToto.TestResultType ? "test result" : v.PredicateType,
                v.Builder, v.Result, v.PassedTests, v.FailedTests, v.KeyIds, keys.Count == 0 ? null : signer is not null, signer,
                v.Subject == product.PathInRepository && v.SubjectDigest == product.Root.ToString(), v.FinishedOn));
        }

        return new ProvenanceView(path, keys.Count == 0 ? null : [.. keys.Select(k => k.Site)], rows, null);
    }

    public static void Write(HtmlWriter html, PageContext page, ProvenanceView? view)
    {
        html.Element("h2", "Provenance (signed statements)");
        if (view is null)
        {
            html.Element("p", "None: this product was published without cairn build's attestations.", ("class", "muted"));
            return;
        }

        html.Element("p", view.Path, ("class", "mono muted"));
        if (view.Problem is not null)
        {
            html.Element("p", view.Problem, ("class", "error"), ("role", "alert"));
            return;
        }

        html.Element("p", view.KeysFrom is { } sites
            ? $"Signatures checked against the keys sites registered with this gateway ({string.Join(", ", sites)})."
            : page.IsGateway ? "No site has registered a key with this gateway: signatures are not checked here."
            : "cairn serve knows no builder keys: signatures are not checked here (cairn verify --provenance POLICY checks them).", ("class", "muted"));
        html.Open("table", ("id", "provenance")).Open("thead").Open("tr");
        foreach (var h in new[] { "Statement", "Builder", "Verdict", "Tests", "Signature", "Subject" }) html.Element("th", h, ("scope", "col"));
        html.Close("tr").Close("thead").Open("tbody");
        foreach (var r in view.Statements)
        {
            html.Open("tr", ("data-kind", r.Kind)).Element("td", r.Kind).Element("td", r.Builder ?? "").Open("td");
            if (r.Result is not null) Layout.Badge(html, r.Result == InToto.Passed ? "passed" : "failed", r.Result);
            html.Close("td");
            html.Element("td", r.PassedTests is null ? "" : $"{r.PassedTests} passed, {r.FailedTests?.Count ?? 0} failed" +
                (r.FailedTests is { Count: > 0 } failed ? ": " + string.Join(", ", failed) : ""));
            html.Open("td", ("data-verified", r.SignatureVerified switch { true => "yes", false => "no", null => "unchecked" }));
            switch (r.SignatureVerified)
            {
                case true: Layout.Badge(html, "passed", $"verified: {r.SignedBy}'s key"); break;
                case false: Layout.Badge(html, "failed", "not verified: no registered key signed it"); break;
                default: html.Element("span", "not checked", ("class", "muted")); break;
            }

            html.Element("span", " " + string.Join(", ", r.KeyIds), ("class", "mono muted"));
            html.Close("td");
            html.Element("td", r.SubjectMatches ? "this product and root" : "another product or root");
            html.Close("tr");
        }

        html.Close("tbody").Close("table");
    }
}
