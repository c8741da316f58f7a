using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Reporting;

/// <summary>
/// What the parser sees in one image, as one JSON object (the shape of <c>driveraudit inspect --format json</c>).
/// Files and dump modules use the same shape; addresses are hex strings (JSON numbers lose bits past 2^53).
/// </summary>
internal static class ImageJson
{
    /// <param name="imports">Imports to list instead of the image's tables (dump modules: the resolved IAT).</param>
    public static void Write(Utf8JsonWriter w, string path, PeImage image, Action<Utf8JsonWriter>? extra = null, IReadOnlyList<ImportFact>? imports = null)
    {
        w.WriteStartObject();
        w.WriteString("path", path);
        extra?.Invoke(w);
        w.WriteString("machine", MachineNames.Name(image.MachineValue));
        w.WriteString("subsystem", MachineNames.Subsystem(image.Subsystem));
        w.WriteBoolean("pe32Plus", image.Is64Bit);
        w.WriteString("imageBase", Hex(image.ImageBase));
        w.WriteString("sizeOfImage", Hex(image.SizeOfImage));
        w.WriteString("entryPoint", Hex(image.AddressOfEntryPoint));
        w.WriteString("characteristics", Hex(image.Characteristics));
        w.WriteString("dllCharacteristics", Hex(image.DllCharacteristics));
        w.WriteString("sectionAlignment", Hex(image.SectionAlignment));
        w.WriteString("fileAlignment", Hex(image.FileAlignment));
        w.WriteNumber("timeDateStamp", image.TimeDateStamp);
        w.WriteString("checkSum", Hex(image.CheckSum));

        w.WriteStartArray("sections");
        foreach (var s in image.Sections)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteString("rva", Hex(s.Rva));
            w.WriteNumber("virtualSize", s.VirtualSize);
            w.WriteNumber("rawSize", s.RawSize);
            w.WriteString("characteristics", Hex(s.Characteristics));
            w.WriteBoolean("readable", (s.Characteristics & PeSection.MemRead) != 0);
            w.WriteBoolean("writable", (s.Characteristics & PeSection.MemWrite) != 0);
            w.WriteBoolean("executable", s.Executable);
            w.WriteBoolean("discardable", (s.Characteristics & PeSection.MemDiscardable) != 0);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartArray("imports");
        var list = imports ?? image.Imports.Imports.Concat(image.DelayImports.Imports)
            .Select(i => new ImportFact(i.Module, i.Name, i.Ordinal, i.Delayed, i.SlotRva)).ToList();
        foreach (var i in list)
        {
            w.WriteStartObject();
            w.WriteString("module", i.Module);
            if (i.Name is null) w.WriteNull("name"); else w.WriteString("name", i.Name);
            if (i.Ordinal is int o) w.WriteNumber("ordinal", o); else w.WriteNull("ordinal");
            w.WriteBoolean("delayed", i.Delayed);
            if (i.SlotRva is uint slot) w.WriteString("slot", Hex(slot)); else w.WriteNull("slot");
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartArray("exports");
        foreach (var e in image.Exports.All)
        {
            w.WriteStartObject();
            if (e.Name is null) w.WriteNull("name"); else w.WriteString("name", e.Name);
            w.WriteNumber("ordinal", e.Ordinal);
            w.WriteString("rva", Hex(e.Rva));
            if (e.Forwarder is null) w.WriteNull("forwarder"); else w.WriteString("forwarder", e.Forwarder);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        if (image.Debug.CodeView is { } cv)
        {
            w.WriteStartObject("pdb");
            w.WriteString("path", cv.PdbPath);
            w.WriteString("guid", cv.Guid.ToString("D"));
            w.WriteNumber("age", cv.Age);
            w.WriteEndObject();
        }
        else w.WriteNull("pdb");

        var version = image.VersionInfo;
        if (version.Status == PeTableStatus.Ok || version.Strings.Count > 0)
        {
            w.WriteStartObject("versionInfo");
            if (version.FileVersion is not null) w.WriteString("FileVersion#fixed", version.FileVersion);
            foreach (var s in version.Strings.DistinctBy(s => s.Key)) w.WriteString(s.Key, s.Value);
            w.WriteEndObject();
        }
        else w.WriteNull("versionInfo");

        var lc = image.LoadConfig;
        w.WriteStartObject("loadConfig");
        w.WriteString("status", lc.Status.ToString().ToLowerInvariant());
        if (lc.SecurityCookie is ulong cookie) w.WriteString("securityCookie", Hex(cookie)); else w.WriteNull("securityCookie");
        if (lc.GuardFlags is uint gf) w.WriteString("guardFlags", Hex(gf)); else w.WriteNull("guardFlags");
        w.WriteEndObject();

        var certs = image.Certificates;
        w.WriteStartObject("certificates");
        w.WriteBoolean("present", certs.Entries.Count > 0);
        w.WriteNumber("size", certs.Size);
        w.WriteNumber("entries", certs.Entries.Count);
        w.WriteEndObject();

        w.WriteStartArray("diagnostics");
        foreach (var d in image.Diagnostics) w.WriteStringValue(d.ToString());
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static string Hex(ulong value) => "0x" + value.ToString("x");

    /// <summary>The <c>inventory</c> object: exactly the fields of a <c>driveraudit inventory</c> record (files and dump modules alike).</summary>
    internal static void WriteInventory(Utf8JsonWriter w, string path, string? module, long? size, ImageRecord record, IEnumerable<string> ruleIds)
    {
        w.WriteStartObject("inventory");
        InventorySink.WriteHead(w, host: null, path, module, size);
        record.WriteFields(w);
        w.WriteStartArray("ruleIds");
        foreach (var id in ruleIds) w.WriteStringValue(id);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Ids of the rules that match the image, as an inventory lists them.</summary>
    internal static List<string> RuleIds(RuleSet rules, IImageFacts facts) =>
        [.. rules.Evaluate(facts).Select(m => m.Rule.Id).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
}
