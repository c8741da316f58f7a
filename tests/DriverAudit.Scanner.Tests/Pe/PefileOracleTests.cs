using System.Text.Json;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

/// <summary>
/// Our parser against an independent one: tests/fixtures/oracle.py dumps every committed fixture with
/// Python's pefile into tests/fixtures/expected; each field we parse must agree with it.
/// </summary>
public sealed class PefileOracleTests
{
    public static TheoryData<string> OracleFiles()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "expected"), "*.json", SearchOption.AllDirectories)
                     .Where(f => Path.GetFileName(Path.GetDirectoryName(f)!) is "x64" or "x86" or "arm64" or "kernel")
                     .OrderBy(f => f, StringComparer.Ordinal))
            data.Add(Path.GetRelativePath(RepoPaths.Fixtures, f).Replace('\\', '/'));
        return data;
    }

    private static (JsonElement Oracle, string Binary) Load(string relativeJson)
    {
        var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, relativeJson))).RootElement.Clone();
        // expected/<arch>[/kernel]/<stem>.json ↔ bin/<arch>[/kernel]/<file>
        var dir = Path.GetDirectoryName(relativeJson)!.Replace("expected", "bin");
        return (json, Path.Combine(RepoPaths.Fixtures, dir, json.GetProperty("file").GetString()!));
    }

    [Theory]
    [MemberData(nameof(OracleFiles))]
    public void Parser_agrees_with_pefile(string oracleFile)
    {
        var (oracle, binary) = Load(oracleFile);
        using var source = FileImageSource.Open(binary);
        var open = PeImage.TryOpen(source);

        if (Path.GetFileName(binary) == "truncated_headers.sys")
        {
            // pefile gives up ("not a PE"); we say more precisely that the headers are truncated; we refuse to analyse the image, with a reason.
            Assert.Null(open.Image);
            Assert.Equal(PeOpenStatus.Truncated, open.Status);
            return;
        }
        if (!oracle.GetProperty("isPe").GetBoolean())
        {
            Assert.Null(open.Image);
            Assert.Equal(PeOpenStatus.NotPe, open.Status);
            return;
        }

        var image = Assert.IsType<PeImage>(open.Image);
        Assert.Equal(oracle.GetProperty("machine").GetInt32(), image.MachineValue);
        Assert.Equal(oracle.GetProperty("subsystem").GetInt32(), image.Subsystem);
        Assert.Equal(oracle.GetProperty("is64").GetBoolean(), image.Is64Bit);
        Assert.Equal(oracle.GetProperty("dllCharacteristics").GetInt32(), image.DllCharacteristics);
        Assert.Equal(oracle.GetProperty("sizeOfImage").GetUInt32(), image.SizeOfImage);
        Assert.Equal(oracle.GetProperty("imageBase").GetUInt64(), image.ImageBase);

        var sections = oracle.GetProperty("sections").EnumerateArray()
            .Select(s => (s.GetProperty("name").GetString(), s.GetProperty("rva").GetUInt32(), s.GetProperty("virtualSize").GetUInt32(),
                s.GetProperty("rawSize").GetUInt32(), s.GetProperty("characteristics").GetUInt32())).ToList();
        Assert.Equal(sections, image.Sections.Select(s => ((string?)s.Name, s.Rva, s.VirtualSize, s.RawSize, s.Characteristics)).ToList());

        var imports = oracle.GetProperty("imports").EnumerateArray()
            .Select(i => (i.GetProperty("module").GetString()!.ToLowerInvariant(),
                i.GetProperty("name").ValueKind == JsonValueKind.Null ? null : i.GetProperty("name").GetString(),
                i.GetProperty("ordinal").ValueKind == JsonValueKind.Null ? (int?)null : i.GetProperty("ordinal").GetInt32(),
                i.GetProperty("delayed").GetBoolean(), i.GetProperty("iatRva").GetUInt32()))
            .Order().ToList();
        var ours = image.Imports.Imports.Concat(image.DelayImports.Imports)
            .Select(i => (i.Module.ToLowerInvariant(), i.Name, i.Ordinal, i.Delayed, i.SlotRva))
            .Order().ToList();
        Assert.Equal(imports, ours);

        var exports = oracle.GetProperty("exports").EnumerateArray()
            .Select(e => (e.GetProperty("name").ValueKind == JsonValueKind.Null ? null : e.GetProperty("name").GetString(),
                e.GetProperty("ordinal").GetInt32(), e.GetProperty("rva").GetUInt32(),
                e.GetProperty("forwarder").ValueKind == JsonValueKind.Null ? null : e.GetProperty("forwarder").GetString()))
            .OrderBy(e => e.Item2).ToList();
        Assert.Equal(exports, image.Exports.All.Select(e => (e.Name, e.Ordinal, e.Rva, e.Forwarder)).OrderBy(e => e.Ordinal).ToList());

        if (oracle.GetProperty("debugCodeView") is { ValueKind: JsonValueKind.Object } cv)
        {
            var ourCv = Assert.IsType<PeCodeView>(image.Debug.CodeView);
            Assert.Equal(cv.GetProperty("pdbPath").GetString(), ourCv.PdbPath);
            Assert.Equal(Guid.Parse(cv.GetProperty("guid").GetString()!), ourCv.Guid);
            Assert.Equal(cv.GetProperty("age").GetUInt32(), ourCv.Age);
        }
        else
        {
            Assert.Null(image.Debug.CodeView);
        }

        var versionJson = oracle.GetProperty("versionStrings");
        var versions = versionJson.ValueKind == JsonValueKind.Object
            ? versionJson.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString())
            : [];
        Assert.Equal(versions.OrderBy(k => k.Key), image.VersionInfo.Strings.ToDictionary(s => s.Key, s => (string?)s.Value).OrderBy(k => k.Key));

        Assert.Equal(oracle.GetProperty("hasCertificate").GetBoolean(), image.Certificates.Entries.Count > 0);
    }

    [Fact]
    public void Every_fixture_binary_has_an_oracle_file()
    {
        var binaries = Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin"), "*", SearchOption.AllDirectories).Count();
        Assert.Equal(binaries, OracleFiles().Count);
    }
}
