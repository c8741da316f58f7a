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

    /// <summary>Where the image came from: a file, or a module of a crash dump (name, full path, base).</summary>
    ModuleFact Module { get; }

    /// <summary>ASCII and UTF-16LE strings found in the image's sections (executable ones included), in RVA order.</summary>
    IReadOnlyList<StringFact> Strings { get; }

    /// <summary>
    /// False only when no string of <see cref="Strings"/> can satisfy <paramref name="match"/>, given that every string
    /// that does contains <paramref name="needle"/>; true when one may. Lets a string rule skip the extraction of every
    /// string of an image that cannot match. <paramref name="alongWith"/> are the other needles this evaluation may ask
    /// about, so that the image's bytes are read and searched once for all of them. The default (always true) is exact
    /// for any implementation.
    /// </summary>
    bool MayHaveString(StringNeedle needle, Func<StringFact, bool> match, IReadOnlyList<StringNeedle> alongWith) => true;

    /// <summary>
    /// Whether decoded code uses the string: takes its address, or the address of a counted-string descriptor
    /// (UNICODE_STRING / ANSI_STRING) whose buffer is the string. Null when the code is not evaluated.
    /// </summary>
    bool? IsStringReferenced(StringFact value) => null;

    /// <summary>
    /// Null when call and instruction facts come from analysing the code; otherwise why the code was not
    /// evaluated (an architecture without code analysis, packed code): rules that need code say "not evaluated".
    /// </summary>
    string? CodeNotEvaluated => null;

    /// <summary>
    /// Instructions the image's architecture does not have (null: none). Rules whose only code evidence is such
    /// instructions are reported "not evaluated" with <see cref="AbsentInstructionsFact.Reason"/>, never silently clean.
    /// </summary>
    AbsentInstructionsFact? AbsentInstructions => null;

    /// <summary>
    /// The instruction facts an <c>instruction:</c> feature with these <paramref name="mnemonics"/> or mov-to
    /// <paramref name="controlRegisters"/> reads: <see cref="Instructions"/>, or a part of it holding every fact such a
    /// feature can match (same function, first address and count), when the facts can find those without the whole
    /// disassembly (e.g. by searching the executable bytes for their opcodes first).
    /// </summary>
    IReadOnlyList<InstructionFact> InstructionsFor(IReadOnlyList<string>? mnemonics, IReadOnlyList<string>? controlRegisters) => Instructions;

    /// <summary>VS_VERSIONINFO string table (key → value); empty when there is none.</summary>
    IReadOnlyDictionary<string, string> VersionInfo { get; }

    /// <summary>The parsed Authenticode signature (not verified); null when the image carries none or it cannot be parsed.</summary>
    SignatureFact? Signature { get; }

    /// <summary>Lower-case hex SHA-256 of the whole file; null when not a file (dump module) or unreadable.</summary>
    string? FileSha256 { get; }

    /// <summary>Lower-case hex Authenticode SHA-256 (checksum and certificate table excluded); null when it cannot be computed.</summary>
    string? AuthenticodeSha256 { get; }

    /// <summary>Lower-case hex Authenticode SHA-1; null when it cannot be computed.</summary>
    string? AuthenticodeSha1 { get; }

    /// <summary>Call sites of imported functions with recovered arguments (computed only when a rule asks).</summary>
    IReadOnlyList<CallFact> Calls { get; }

    /// <summary>Notable instructions in the image's functions (wrmsr, rdmsr, in, out, mov to control registers), one per function and kind.</summary>
    IReadOnlyList<InstructionFact> Instructions { get; }
}
