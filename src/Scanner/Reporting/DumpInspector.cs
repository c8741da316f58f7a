using System.Globalization;
using System.Text.Json;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Reporting;

/// <summary>
/// <c>driveraudit inspect DUMP</c>: the dump's summary and module table; <c>--module NAME</c> adds that module's
/// IAT as the debugger's <c>dps</c> shows it. With <c>--format json</c>: a <c>"kind":"dump"</c> object, then one object per
/// module image in the shape of <see cref="ImageJson"/> with the resolved imports.
/// </summary>
internal static class DumpInspector
{
    /// <param name="input">An opened dump (<see cref="OpenedInput.Dump"/> not null).</param>
    /// <param name="rules">With JSON: each module object gets the <c>inventory</c> object <c>driveraudit inventory</c> lists for it.</param>
    /// <returns>An error message, or null.</returns>
    public static string? Inspect(OpenedInput input, string? moduleFilter, bool asJson, Utf8JsonWriter writer, Action endLine, TextWriter o,
        DriverAudit.Rules.Engine.RuleSet? rules = null)
    {
        var dump = input.Dump!;
        var path = input.Item.DisplayPath;
        var selected = input.Modules.Where(t => moduleFilter is null || string.Equals(t.Module.Name, moduleFilter, StringComparison.OrdinalIgnoreCase)).ToList();
        if (moduleFilter is not null && selected.Count == 0)
            return $"'{path}' has no module named '{moduleFilter}'.";
        if (asJson)
        {
            WriteSummaryJson(writer, path, dump);
            endLine();
            foreach (var target in selected)
            {
                var m = target.Module;
                if (!m.ImageAvailable) continue;
                var open = target.OpenImage();
                if (open.Image is not PeImage image)
                {
                    writer.WriteStartObject();
                    writer.WriteString("path", target.DisplayPath);
                    writer.WriteString("kind", "module");
                    writer.WriteString("moduleBase", ImageJson.Hex(m.Base));
                    writer.WriteString("error", open.Reason);
                    writer.WriteEndObject();
                    endLine();
                    continue;
                }
                var facts = target.Facts(image);
                var iat = facts.Iat!; // a dump module's imports always come from its resolved IAT
                ImageJson.Write(writer, target.DisplayPath, image, w =>
                {
                    ModuleJson(w, m, iat);
                    // The same record as the inventory command's for this module (DumpInputAnalyzer describes it the same way).
                    if (rules is not null)
                        ImageJson.WriteInventory(w, path, m.Name, m.Size, Fleet.ImageRecord.Describe(image, new Signing.ImageSigning(image)), ImageJson.RuleIds(rules, facts));
                }, iat.Imports);
                endLine();
            }
        }
        else
        {
            WriteSummaryText(o, path, dump);
            foreach (var target in moduleFilter is null ? [] : selected) WriteIatText(o, dump, target);
            o.WriteLine();
        }
        return null;
    }

    private static void WriteSummaryText(TextWriter o, string path, KernelDump dump)
    {
        o.WriteLine(path);
        o.WriteLine(dump.DumpType == DumpType.RawMemory
            ? $"  kernel dump: {TypeName(dump)}, machine {MachineName(dump)}"
            : $"  kernel dump: {TypeName(dump)}, machine {MachineName(dump)}, build {dump.MinorVersion} ({(dump.MajorVersion == 0xC ? "checked" : "free")}), {dump.NumberOfProcessors} processor(s)");
        if (dump.DumpType != DumpType.RawMemory) // a raw image has no crash: no bugcheck, no crash time
        {
            o.WriteLine($"  bugcheck 0x{dump.BugCheckCode:X8} (0x{dump.BugCheckParameter1:x}, 0x{dump.BugCheckParameter2:x}, 0x{dump.BugCheckParameter3:x}, 0x{dump.BugCheckParameter4:x})");
            o.WriteLine($"  system time {(dump.SystemTime is { } t ? t.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "unknown")}");
        }
        if (dump.DumpType != DumpType.RawMemory) o.WriteLine($"  version: {VersionText(dump)}");
        foreach (var note in dump.LocatorNotes) o.WriteLine($"  located: {note}");
        if (dump.IsTriage)
        {
            var (blocks, bytes) = dump.DataBlocks;
            o.WriteLine($"  triage minidump: modules are listed; {blocks} data block(s) ({bytes} bytes) hold part of {dump.Modules.Count(m => m.ImageAvailable)} module image(s)");
        }
        o.WriteLine($"  modules ({dump.Modules.Count}):");
        var w = dump.Machine != DumpMachine.X86 ? 17 : 8;
        o.WriteLine($"    {"base".PadRight(w)} {"size",-10} {"timestamp",-10} {"missing",-11} {"name",-24} path");
        foreach (var m in dump.Modules)
        {
            var source = dump.OpenModuleImage(m);
            var missing = $"{source.CountMissingPages()}/{source.PageCount}";
            o.WriteLine($"    {Address(dump, m.Base).PadRight(w)} 0x{m.Size:x8} {(m.TimeDateStamp is { } ts ? $"0x{ts:x8}" : "-"),-10} {missing,-11} {m.Name,-24} {m.FullPath}");
        }
        if (dump.IsTriage || dump.UnloadedDrivers.Count > 0)
        {
            o.WriteLine($"  unloaded drivers ({dump.UnloadedDrivers.Count}):");
            if (dump.UnloadedDrivers.Count > 0) o.WriteLine($"    {"base".PadRight(w)} {"size",-10} {"unloaded",-20} name");
            foreach (var u in dump.UnloadedDrivers)
                o.WriteLine($"    {Address(dump, u.Base).PadRight(w)} 0x{u.Size:x8} {UnloadTime(u),-20} {u.Name}{(u.Truncated ? " (name cut to 12 characters by the kernel)" : "")}");
        }
        foreach (var d in dump.Diagnostics) o.WriteLine($"  diagnostic: {d}");
    }

    private static string UnloadTime(UnloadedDriver u) =>
        u.UnloadTime is { } t ? t.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "not recorded";

    private static string VersionText(KernelDump dump)
    {
        var parts = new List<string> { $"build {dump.MinorVersion}" };
        if (dump.ServicePackBuild != 0) parts.Add($"service pack build 0x{dump.ServicePackBuild:x}");
        if (dump.ProductType is { } p) parts.Add($"product {ProductName(p)}");
        if (dump.BuildLab is { } lab) parts.Add($"NtBuildLab {lab}");
        return string.Join(", ", parts);
    }

    private static string ProductName(uint p) => p switch
    {
        1 => "workstation",
        2 => "domain controller",
        3 => "server",
        _ => $"0x{p:x}",
    };

    /// <summary>Like <c>dps</c> over the IAT: slot address, value, <c>module!function</c>.</summary>
    private static void WriteIatText(TextWriter o, KernelDump dump, DumpModuleTarget target)
    {
        var m = target.Module;
        o.WriteLine();
        o.WriteLine($"  {m.Name} at {Address(dump, m.Base)}");
        if (!m.ImageAvailable) { o.WriteLine("    image not in the dump (triage minidump)"); return; }
        var open = target.OpenImage();
        if (open.Image is not PeImage image) { o.WriteLine($"    not analysable: {open.Reason}"); return; }
        var iat = target.Facts(image).Iat!;
        o.WriteLine($"  IAT ({SourceName(iat.Source)}{(iat.IatRva is { } rva ? $" at RVA 0x{rva:x}" : "")}, {iat.Slots.Count} slot(s), {iat.UnresolvedCount} unresolved):");
        foreach (var s in iat.Slots)
        {
            var value = s.Value is { } v ? Address(dump, v) : "????????";
            var what = s.Display ?? $"(unresolved: {s.Problem})";
            if (s.DescriptorModule is not null) what += $"  [descriptor: {s.DescriptorModule}]";
            else if (s.Resolved && s.Problem is not null) what += $"  [{s.Problem}]";
            o.WriteLine($"    {Address(dump, m.Base + s.Rva)}  {value}  {what}");
        }
        foreach (var i in iat.Imports.Where(i => i.Delayed))
            o.WriteLine($"    {Address(dump, m.Base + (i.SlotRva ?? 0))}  (delay-load)  {i.Ref}");
        foreach (var d in iat.Diagnostics) o.WriteLine($"    diagnostic: {d}");
    }

    private static void WriteSummaryJson(Utf8JsonWriter w, string path, KernelDump dump)
    {
        w.WriteStartObject();
        w.WriteString("kind", "dump");
        w.WriteString("path", path);
        w.WriteString("dumpType", TypeName(dump));
        w.WriteNumber("dumpTypeValue", (int)dump.DumpType);
        w.WriteString("machine", MachineName(dump));
        w.WriteNumber("build", dump.MinorVersion);
        w.WriteBoolean("checkedBuild", dump.MajorVersion == 0xC);
        w.WriteNumber("processors", dump.NumberOfProcessors);
        w.WriteStartObject("bugCheck");
        w.WriteString("code", ImageJson.Hex(dump.BugCheckCode));
        w.WriteStartArray("parameters");
        foreach (var p in new[] { dump.BugCheckParameter1, dump.BugCheckParameter2, dump.BugCheckParameter3, dump.BugCheckParameter4 })
            w.WriteStringValue(ImageJson.Hex(p));
        w.WriteEndArray();
        w.WriteEndObject();
        if (dump.SystemTime is { } t) w.WriteString("systemTime", t.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        else w.WriteNull("systemTime");
        w.WriteBoolean("imagesAvailable", dump.HasMemory);
        if (dump.LocatorNotes.Count > 0)
        {
            w.WriteStartArray("located");
            foreach (var note in dump.LocatorNotes) w.WriteStringValue(note);
            w.WriteEndArray();
        }
        w.WriteStartObject("version");
        w.WriteNumber("build", dump.MinorVersion);
        if (dump.ServicePackBuild != 0) w.WriteNumber("servicePackBuild", dump.ServicePackBuild);
        if (dump.ProductType is { } pt) w.WriteString("productType", ProductName(pt));
        if (dump.BuildLab is { } lab) w.WriteString("ntBuildLab", lab);
        w.WriteEndObject();
        if (dump.IsTriage)
        {
            var (blocks, bytes) = dump.DataBlocks;
            w.WriteNumber("dataBlocks", blocks);
            w.WriteNumber("dataBlockBytes", bytes);
        }
        if (dump.IsTriage || dump.UnloadedDrivers.Count > 0)
        {
            w.WriteStartArray("unloadedDrivers");
            foreach (var u in dump.UnloadedDrivers)
            {
                w.WriteStartObject();
                w.WriteString("name", u.Name);
                w.WriteBoolean("nameTruncated", u.Truncated);
                w.WriteString("base", ImageJson.Hex(u.Base));
                w.WriteString("size", ImageJson.Hex(u.Size));
                if (u.UnloadTime is { } t2) w.WriteString("unloadTime", t2.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
                else w.WriteNull("unloadTime");
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteStartArray("modules");
        foreach (var m in dump.Modules)
        {
            var source = dump.OpenModuleImage(m);
            w.WriteStartObject();
            w.WriteNumber("index", m.Index);
            w.WriteString("name", m.Name);
            w.WriteString("path", m.FullPath);
            w.WriteString("base", ImageJson.Hex(m.Base));
            w.WriteString("size", ImageJson.Hex(m.Size));
            if (m.TimeDateStamp is { } ts) w.WriteNumber("timeDateStamp", ts); else w.WriteNull("timeDateStamp");
            if (m.CheckSum is { } cs) w.WriteString("checkSum", ImageJson.Hex(cs)); else w.WriteNull("checkSum");
            w.WriteNumber("pages", source.PageCount);
            w.WriteNumber("missingPages", source.CountMissingPages());
            w.WriteBoolean("captured", m.ImageAvailable);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("diagnostics");
        foreach (var d in dump.Diagnostics) w.WriteStringValue(d.ToString());
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void ModuleJson(Utf8JsonWriter w, DumpModule m, IatResolution iat)
    {
        w.WriteString("kind", "module");
        w.WriteString("moduleName", m.Name);
        w.WriteString("moduleBase", ImageJson.Hex(m.Base));
        w.WriteString("modulePath", m.FullPath);
        w.WriteString("iatSource", SourceName(iat.Source));
        if (iat.IatRva is { } rva) w.WriteString("iatRva", ImageJson.Hex(rva)); else w.WriteNull("iatRva");
        w.WriteStartArray("iat");
        foreach (var s in iat.Slots)
        {
            w.WriteStartObject();
            w.WriteString("slot", ImageJson.Hex(s.Rva));
            if (s.Value is { } v) w.WriteString("value", ImageJson.Hex(v)); else w.WriteNull("value");
            if (s.Display is { } d) w.WriteString("target", d); else w.WriteNull("target");
            if (s.DescriptorModule is { } dm) w.WriteString("descriptorModule", dm);
            if (s.Problem is { } p) w.WriteString("problem", p);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("iatDiagnostics");
        foreach (var d in iat.Diagnostics) w.WriteStringValue(d.ToString());
        w.WriteEndArray();
    }

    private static string Address(KernelDump dump, ulong va) =>
        dump.Machine != DumpMachine.X86 ? $"{va >> 32:x8}`{va & 0xFFFF_FFFF:x8}" : $"{va:x8}";

    private static string TypeName(KernelDump dump) => dump.DumpType switch
    {
        DumpType.Full => "full",
        DumpType.Summary => "summary",
        DumpType.Triage => "triage",
        DumpType.BitmapFull => "bitmap-full",
        DumpType.BitmapKernel => "bitmap-kernel",
        DumpType.Automatic => "automatic",
        DumpType.RangeKernel => "range-kernel",
        DumpType.RangeKernelAndUser => "range-kernel-user",
        DumpType.RangeComplete => "range-complete",
        DumpType.RawMemory => "raw memory image",
        _ => "unknown",
    };

    private static string MachineName(KernelDump dump) => dump.Machine switch
    {
        DumpMachine.X64 => "x64",
        DumpMachine.Arm64 => "ARM64",
        _ => dump.PaeEnabled ? "x86 (PAE)" : "x86",
    };

    private static string SourceName(IatSource s) => s switch
    {
        IatSource.DataDirectory => "data directory 12",
        IatSource.ImportDescriptors => "import descriptors",
        IatSource.PointerScan => "pointer scan",
        _ => "not found",
    };
}
