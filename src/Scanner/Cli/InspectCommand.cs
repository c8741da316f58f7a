using System.CommandLine;
using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Fleet;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Cli;

/// <summary><c>driveraudit inspect PATH... [--format text|json]</c>: what the parser sees, for people and for scripts.</summary>
internal static class InspectCommand
{
    public static Command Create(CliIo io)
    {
        var paths = CliInputs.PathsArgument("Images, kernel dumps or folders to inspect.");
        // The spelling of earlier versions, kept working but no longer shown: every command says --format.
        var json = new Option<bool>("--json") { Description = "The same as --format json.", Hidden = true };
        var format = CliInputs.FormatOption(
            "text or json (JSON Lines: one object per image, with an 'inventory' object of the fields 'driveraudit inventory' lists). Default: text.",
            null, InspectSettings.Formats);
        var include = new Option<string[]>("--include") { Description = "Glob of files to inspect inside folders. Default: **/*.sys and **/*.dmp." };
        var module = new Option<string>("--module") { Description = "Kernel dumps: show this module's IAT (slot address, value, module!function), like the debugger's dps." };
        var command = new Command("inspect", "Show headers, sections, imports, exports, PDB, version and signature facts of images; the summary and module table of kernel dumps.")
        {
            paths, format, json, include, module,
        };
        command.SetAction(parse => CliInputs.RunWith(InspectSettings.From(new InspectFlags
        {
            Paths = parse.GetValue(paths) ?? [],
            Format = parse.GetValue(format),
            Json = parse.GetValue(json),
            Include = parse.GetValue(include) ?? [],
            Module = parse.GetValue(module),
        }), io, settings => Run(settings, io)));
        return command;
    }

    /// <summary>Inspects with settings already decided; 3 when an input could not be read.</summary>
    internal static int Run(InspectSettings settings, CliIo io)
    {
        if (!CliInputs.AllExist(settings.Paths, io, "inspected")) return ExitCodes.UsageOrConfiguration;
        var asJson = settings.Json;
        // The inventory's ruleIds need the embedded pack; text output does not.
        var ruleSet = asJson ? ScanCommand.LoadRules([], includeDefault: true, io) : null;
        if (asJson && ruleSet is null) return ExitCodes.UsageOrConfiguration;
        var failed = 0;
        using var writer = new Utf8JsonWriter(io.StdoutStream);
        foreach (var item in CliInputs.Crawl(io, settings.Paths, new CrawlOptions(settings.Include, []), new SourceRoot(io.WorkingDirectory)))
        {
            using var input = InputOpener.Open(item);
            var error = input.Dump is not null ? DumpInspector.Inspect(input, settings.Module, asJson, writer, () => EndLine(writer, io), io.Out, ruleSet)
                : input.Image is not null ? Inspect(input, ruleSet, writer, io)
                : input.RefusalMessage;
            if (error is null) continue;
            failed++;
            if (asJson)
            {
                writer.WriteStartObject();
                writer.WriteString("path", item.DisplayPath);
                writer.WriteString("input", OpenedInput.Describe(input.Class));
                writer.WriteString("error", error);
                writer.WriteEndObject();
                EndLine(writer, io);
            }
            io.Error.WriteLine($"driveraudit: {error}");
        }
        io.Out.Flush();
        return ExitCodes.ForInputs(failed);
    }

    private static string? Inspect(OpenedInput input, RuleSet? rules, Utf8JsonWriter writer, CliIo io)
    {
        var image = input.Image!;
        var path = input.Item.DisplayPath;
        if (rules is not null)
        {
            var facts = new PeFacts(image, path);
            var ruleIds = ImageJson.RuleIds(rules, facts);
            var record = ImageRecord.Describe(image, facts.Signing, facts.FileSha256);
            ImageJson.Write(writer, path, image, w => ImageJson.WriteInventory(w, path, module: null, input.Source!.Length, record, ruleIds));
            EndLine(writer, io);
        }
        else
        {
            WriteText(io.Out, path, image);
        }
        return null;
    }

    private static void EndLine(Utf8JsonWriter writer, CliIo io) => CliInputs.EndJsonLine(writer, io);

    private static void WriteText(TextWriter o, string path, PeImage image)
    {
        o.WriteLine(path);
        o.WriteLine($"  machine {MachineNames.Name(image.MachineValue)}, subsystem {MachineNames.Subsystem(image.Subsystem)}, " +
                    $"image base 0x{image.ImageBase:x}, size 0x{image.SizeOfImage:x}, dll characteristics 0x{image.DllCharacteristics:x4}");
        o.WriteLine("  sections:");
        foreach (var s in image.Sections)
        {
            var rwx = $"{((s.Characteristics & PeSection.MemRead) != 0 ? 'r' : '-')}{((s.Characteristics & PeSection.MemWrite) != 0 ? 'w' : '-')}{(s.Executable ? 'x' : '-')}";
            o.WriteLine($"    {s.Name,-8} rva 0x{s.Rva:x8} vsize 0x{s.VirtualSize:x8} raw 0x{s.RawSize:x8} {rwx} 0x{s.Characteristics:x8}");
        }
        var imports = image.Imports.Imports.Concat(image.DelayImports.Imports).ToList();
        o.WriteLine($"  imports ({imports.Count}):");
        foreach (var i in imports)
            o.WriteLine($"    0x{i.SlotRva:x8} {ImportRef.Format(i.Module, i.Name, i.Ordinal)}{(i.Delayed ? " (delay-load)" : "")}");
        if (image.Exports.All.Count > 0)
        {
            o.WriteLine($"  exports ({image.Exports.All.Count}):");
            foreach (var e in image.Exports.All)
                o.WriteLine($"    #{e.Ordinal,-5} {e.Name ?? "(no name)"} {(e.Forwarder is null ? $"0x{e.Rva:x8}" : "-> " + e.Forwarder)}");
        }
        if (image.Debug.CodeView is { } cv) o.WriteLine($"  pdb: {cv.PdbPath} {{{cv.Guid:D}}} age {cv.Age}");
        foreach (var s in image.VersionInfo.Strings) o.WriteLine($"  version: {s.Key} = {s.Value}");
        o.WriteLine($"  certificate table: {(image.Certificates.Entries.Count > 0 ? $"{image.Certificates.Entries.Count} entr(y/ies), {image.Certificates.Size} bytes" : "none")}");
        foreach (var d in image.Diagnostics) o.WriteLine($"  diagnostic: {d}");
        o.WriteLine();
    }
}
