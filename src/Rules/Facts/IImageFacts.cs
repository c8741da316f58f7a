namespace DriverAudit.Rules.Facts;

/// <summary>
/// What the rule engine may ask about one image. The scanner implements it lazily: a property is
/// computed the first time a rule reads it, so a pack that needs only imports never parses more.
/// Rules never see PE structures, only these facts; that keeps the language testable in memory.
/// </summary>
public interface IImageFacts
{
    /// <summary>Name used in messages ({artifact}), e.g. "drivers/pool_legacy.sys" or "MEMORY.DMP!{GUID}.sys".</summary>
    string DisplayName { get; }

    HeaderFact Header { get; }

    /// <summary>Sections in table order.</summary>
    IReadOnlyList<SectionFact> Sections { get; }

    /// <summary>Imports in table order (normal imports first, then delay-load imports).</summary>
    IReadOnlyList<ImportFact> Imports { get; }

    IReadOnlyList<ExportFact> Exports { get; }

    /// <summary>
    /// A derived boolean by its documented name (see <see cref="Characteristics"/>).
    /// Returns null when the fact cannot be known for this image (e.g. pages missing in a dump).
    /// </summary>
    bool? GetCharacteristic(string name);
}
