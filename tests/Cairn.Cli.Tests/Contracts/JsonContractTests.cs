using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Cairn.Core;

namespace Cairn.Cli.Tests.Contracts;

/// <summary>
/// Every JSON document Cairn reads or writes goes through a source-generated context (the AOT cairn has no
/// reflection). These tests walk every type those contexts describe and hold them to the contract the reflection
/// serializer used to give: the same property names in the same order, enums as camelCase strings.
/// </summary>
public sealed class JsonContractTests
{
    /// <summary>The options Cairn serialized with before source generation, kept here as the reference.</summary>
    private static readonly JsonSerializerOptions Reference = CreateReference(withDigests: false);

    /// <summary>The reference with the digest converter, for whole documents.</summary>
    private static readonly JsonSerializerOptions ReferenceWithDigests = CreateReference(withDigests: true);

    private static JsonSerializerOptions CreateReference(bool withDigests)
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        };
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        if (withDigests) o.Converters.Add(new DigestJsonConverter());
        o.MakeReadOnly();
        return o;
    }

    public static TheoryData<string> Contexts()
    {
        var data = new TheoryData<string>();
        // The public contexts describe Cairn's documents and output. An internal one keeps a private storage format
        // with its own settings (Coordination's StoredJson: database columns as they have always been written).
        foreach (var context in AllContexts().Where(c => c.GetType().IsPublic)) data.Add(context.GetType().FullName!);
        return data;
    }

    [Fact]
    public void Every_library_that_writes_json_has_a_context()
    {
        var names = AllContexts().Select(c => c.GetType().Assembly.GetName().Name).ToHashSet();
        // The CLI's assembly is named after its binary: cairn.
        foreach (var expected in new[] { "Cairn.Core", "Cairn.Trust", "cairn" })
        {
            Assert.Contains(expected, names);
        }
    }

    [Theory]
    [MemberData(nameof(Contexts))]
    public void Properties_match_the_reflection_contract_and_enums_are_camel_case_strings(string contextName)
    {
        var context = AllContexts().Single(c => c.GetType().FullName == contextName);
        Assert.Equal(JsonNamingPolicy.CamelCase, context.Options.PropertyNamingPolicy);
        Assert.Equal(JsonIgnoreCondition.WhenWritingNull, context.Options.DefaultIgnoreCondition);
        var seen = new HashSet<Type>();
        foreach (var root in RootTypes(context)) Walk(context, root, seen);
        Assert.NotEmpty(seen);
    }

    private static void Walk(JsonSerializerContext context, Type type, HashSet<Type> seen)
    {
        if (!seen.Add(type)) return;
        var generated = context.GetTypeInfo(type);
        Assert.True(generated is not null, $"{context.GetType().Name} has no metadata for {type}, a type its graph reaches");
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying.IsEnum)
        {
            foreach (var value in Enum.GetValues(underlying))
            {
                var expected = JsonSerializer.Serialize(value, underlying, Reference);
                var actual = JsonSerializer.Serialize(value, context.GetTypeInfo(underlying)!);
                Assert.True(expected == actual, $"{underlying} value {value}: {actual}, expected {expected} (annotate the enum with CamelCaseEnumConverter)");
            }

            return;
        }

        var reference = Reference.GetTypeInfo(type);
        Assert.Equal(reference.Kind, generated!.Kind);
        if (generated.Kind == JsonTypeInfoKind.Object)
        {
            var expected = reference.Properties.Select(p => p.Name).ToList();
            var actual = generated.Properties.Select(p => p.Name).ToList();
            Assert.True(expected.SequenceEqual(actual), $"{type}: properties [{string.Join(", ", actual)}], reflection wrote [{string.Join(", ", expected)}]");
            foreach (var p in generated.Properties) Walk(context, p.PropertyType, seen);
        }

        if (generated.ElementType is { } element) Walk(context, element, seen);
        if (generated.KeyType is { } key) Walk(context, key, seen);
        if (underlying != type) Walk(context, underlying, seen);
    }

    [Fact]
    public void A_manifest_is_written_exactly_as_before()
    {
        var digest = Digest.Of("x"u8);
        var manifest = new Manifest(1, "stack", 7, 6, DateTimeOffset.Parse("2026-12-06T04:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
            digest, 42, digest, new Dictionary<string, long> { ["stable"] = 6 }, "publish zlib/1.3", ["0001"]);
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(manifest, ReferenceWithDigests), CairnJson.Serialize(manifest, CoreJson.Default.Manifest));
        Assert.Equal(
            $$"""{"format":1,"repository":"stack","revision":7,"parent":6,"timestamp":"2026-12-06T04:00:00+00:00","root":"{{digest}}","rootSize":42,"catalog":"{{digest}}","tags":{"stable":6},"message":"publish zlib/1.3","packs":["0001"]}""",
            System.Text.Encoding.UTF8.GetString(CairnJson.Serialize(manifest, CoreJson.Default.Manifest)));
    }

    private static IEnumerable<Type> RootTypes(JsonSerializerContext context) =>
        context.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.PropertyType.IsGenericType && p.PropertyType.GetGenericTypeDefinition() == typeof(JsonTypeInfo<>))
            .Select(p => p.PropertyType.GetGenericArguments()[0]);

    private static List<JsonSerializerContext> AllContexts()
    {
        var list = new List<JsonSerializerContext>();
        foreach (var path in Directory.GetFiles(AppContext.BaseDirectory, "Cairn.*.dll").Append(Path.Combine(AppContext.BaseDirectory, "cairn.dll")))
        {
            if (path.EndsWith(".Tests.dll", StringComparison.Ordinal) || !File.Exists(path)) continue;
            var assembly = Assembly.Load(AssemblyName.GetAssemblyName(path));
            foreach (var type in assembly.GetTypes().Where(t => typeof(JsonSerializerContext).IsAssignableFrom(t) && !t.IsAbstract))
            {
                var instance = type.GetProperty("Default", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)?.GetValue(null);
                if (instance is JsonSerializerContext context) list.Add(context);
            }
        }

        return list;
    }
}
