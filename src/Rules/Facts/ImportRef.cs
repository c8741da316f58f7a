namespace DriverAudit.Rules.Facts;

/// <summary>
/// An imported (or resolved) function: module and name, or module and ordinal. The one place that spells it
/// <c>module!name</c> / <c>module!#ordinal</c>.
/// </summary>
/// <param name="Module">DLL name as the image (or the dump's loader) writes it, e.g. "ntoskrnl.exe".</param>
/// <param name="Name">Function name; null for an import by ordinal.</param>
/// <param name="Ordinal">Ordinal for an import by ordinal; null for an import by name.</param>
public readonly record struct ImportRef(string Module, string? Name, int? Ordinal)
{
    /// <summary>"ExAllocatePool" or "#12".</summary>
    public string Function => Name ?? "#" + Ordinal;

    /// <summary>Stable anchor, module lower-cased: "ntoskrnl.exe!ExAllocatePool", "hal.dll!#12".</summary>
    public string Key => Format(Module.ToLowerInvariant(), Name, Ordinal);

    /// <summary>"ntoskrnl.exe!ExAllocatePool", "HAL.dll!#12": the module as written.</summary>
    public override string ToString() => Format(Module, Name, Ordinal);

    public static string Format(string module, string? name, int? ordinal) => $"{module}!{name ?? "#" + ordinal}";
}
