using System.Text.Json.Serialization;

namespace DriverAudit.Scanner.Reporting.Sarif;

// A small typed subset of SARIF 2.1.0: only what DriverAudit writes. Property names follow the
// schema exactly; anything that is not in the schema goes into a "properties" bag.

internal sealed record SarifMessage([property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("markdown")] string? Markdown = null);

internal sealed record SarifToolComponent
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("semanticVersion")] public required string SemanticVersion { get; init; }
    [JsonPropertyName("informationUri")] public required string InformationUri { get; init; }
    [JsonPropertyName("rules")] public required IReadOnlyList<SarifReportingDescriptor> Rules { get; init; }
    [JsonPropertyName("notifications")] public required IReadOnlyList<SarifReportingDescriptor> Notifications { get; init; }
}

internal sealed record SarifTool([property: JsonPropertyName("driver")] SarifToolComponent Driver);

internal sealed record SarifConfiguration([property: JsonPropertyName("level")] string Level);

internal sealed record SarifReportingDescriptor
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("name")] public string? Name { get; init; }
    [JsonPropertyName("shortDescription")] public SarifMessage? ShortDescription { get; init; }
    [JsonPropertyName("fullDescription")] public SarifMessage? FullDescription { get; init; }
    [JsonPropertyName("help")] public SarifMessage? Help { get; init; }
    [JsonPropertyName("helpUri")] public string? HelpUri { get; init; }
    [JsonPropertyName("defaultConfiguration")] public SarifConfiguration? DefaultConfiguration { get; init; }
    [JsonPropertyName("properties")] public IReadOnlyDictionary<string, object>? Properties { get; init; }
}

internal sealed record SarifArtifactLocation
{
    [JsonPropertyName("uri")] public required string Uri { get; init; }
    [JsonPropertyName("uriBaseId")] public string? UriBaseId { get; init; }
    [JsonPropertyName("index")] public int? Index { get; init; }
}

internal sealed record SarifRegion([property: JsonPropertyName("startLine")] int StartLine);

/// <summary>The exact place in the binary: the RVA of the call or instruction (relative to the image base).</summary>
internal sealed record SarifAddress
{
    [JsonPropertyName("relativeAddress")] public required long RelativeAddress { get; init; }
    [JsonPropertyName("kind")] public string? Kind { get; init; }
}

internal sealed record SarifPhysicalLocation
{
    [JsonPropertyName("artifactLocation")] public required SarifArtifactLocation ArtifactLocation { get; init; }
    [JsonPropertyName("region")] public SarifRegion? Region { get; init; }
    [JsonPropertyName("address")] public SarifAddress? Address { get; init; }
}

internal sealed record SarifLogicalLocation
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("fullyQualifiedName")] public string? FullyQualifiedName { get; init; }
    [JsonPropertyName("kind")] public string? Kind { get; init; }
}

internal sealed record SarifLocation
{
    [JsonPropertyName("physicalLocation")] public SarifPhysicalLocation? PhysicalLocation { get; init; }
    [JsonPropertyName("logicalLocations")] public IReadOnlyList<SarifLogicalLocation>? LogicalLocations { get; init; }
}

internal sealed record SarifResult
{
    [JsonPropertyName("ruleId")] public required string RuleId { get; init; }
    [JsonPropertyName("ruleIndex")] public required int RuleIndex { get; init; }
    [JsonPropertyName("level")] public required string Level { get; init; }
    [JsonPropertyName("message")] public required SarifMessage Message { get; init; }
    [JsonPropertyName("locations")] public required IReadOnlyList<SarifLocation> Locations { get; init; }
    [JsonPropertyName("partialFingerprints")] public required IReadOnlyDictionary<string, string> PartialFingerprints { get; init; }
    [JsonPropertyName("baselineState")] public string? BaselineState { get; init; }
    [JsonPropertyName("suppressions")] public IReadOnlyList<SarifSuppression>? Suppressions { get; init; }
    [JsonPropertyName("properties")] public IReadOnlyDictionary<string, object>? Properties { get; init; }
}

/// <summary>An accepted risk: kind external (the config file), status accepted, with its justification and entry.</summary>
internal sealed record SarifSuppression
{
    [JsonPropertyName("kind")] public required string Kind { get; init; }
    [JsonPropertyName("status")] public string? Status { get; init; }
    [JsonPropertyName("justification")] public string? Justification { get; init; }
    [JsonPropertyName("location")] public SarifLocation? Location { get; init; }
    [JsonPropertyName("properties")] public IReadOnlyDictionary<string, object>? Properties { get; init; }
}

internal sealed record SarifArtifact
{
    [JsonPropertyName("location")] public required SarifArtifactLocation Location { get; init; }
    [JsonPropertyName("parentIndex")] public int? ParentIndex { get; init; }
    [JsonPropertyName("length")] public long? Length { get; init; }
    [JsonPropertyName("roles")] public required IReadOnlyList<string> Roles { get; init; }
    [JsonPropertyName("hashes")] public IReadOnlyDictionary<string, string>? Hashes { get; init; }
    [JsonPropertyName("description")] public SarifMessage? Description { get; init; }
    [JsonPropertyName("properties")] public IReadOnlyDictionary<string, object>? Properties { get; init; }
}

internal sealed record SarifDescriptorReference
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("index")] public int? Index { get; init; }
}

internal sealed record SarifNotification
{
    [JsonPropertyName("level")] public required string Level { get; init; }
    [JsonPropertyName("message")] public required SarifMessage Message { get; init; }
    [JsonPropertyName("descriptor")] public SarifDescriptorReference? Descriptor { get; init; }
    [JsonPropertyName("associatedRule")] public SarifDescriptorReference? AssociatedRule { get; init; }
    [JsonPropertyName("locations")] public IReadOnlyList<SarifLocation>? Locations { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SarifTool))]
[JsonSerializable(typeof(SarifResult))]
[JsonSerializable(typeof(SarifArtifact))]
[JsonSerializable(typeof(SarifNotification))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(double))]
internal sealed partial class SarifJsonContext : JsonSerializerContext;
