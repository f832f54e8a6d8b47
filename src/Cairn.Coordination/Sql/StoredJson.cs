using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cairn.Coordination.Sql;

/// <summary>
/// The JSON columns of the coordination database (site labels, token scopes, lease and commit paths, test cases).
/// Not <see cref="CoordinationJson"/>'s settings: rows have always been written with the web defaults (nulls kept)
/// and test outcomes as numbers, and existing databases must read back the same.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, Converters = [typeof(JsonNumberEnumConverter<TestOutcome>)])]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(IReadOnlyList<TestCaseResult>))]
internal sealed partial class StoredJson : JsonSerializerContext;
