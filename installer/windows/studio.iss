; Inno Setup 6 script: wraps the PyInstaller bundle (build\installer\dist\studio) into
; dist\installer\studio-<version>-windows-x64-setup.exe. Steps: installer\README.md.
;   iscc /DAppVersion=0.1.0 installer\windows\studio.iss

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define Bundle "..\..\build\installer\dist\studio"

[Setup]
AppId={{6F1D4C57-2E0B-4F55-9C1A-5B1E0D7A3C11}
AppName=Studio
AppVersion={#AppVersion}
AppPublisher=Studio maintainers
DefaultDirName={autopf}\Studio
DefaultGroupName=Studio
DisableProgramGroupPage=yes
; Per-user install by default (no admin prompt); the user may choose all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist\installer
OutputBaseFilename=studio-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\build\installer\icon.ico
UninstallDisplayIcon={app}\studio-app.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the studio command to PATH"; Flags: unchecked

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Studio"; Filename: "{app}\studio-app.exe"
Name: "{autodesktop}\Studio"; Filename: "{app}\studio-app.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\studio-app.exe"; Description: "{cm:LaunchProgram,Studio}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; The app writes nothing here; this only catches files a user dropped into the folder.
Type: filesandordirs; Name: "{app}"

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Path: string;
begin
  if not RegQueryStringValue(HKCU, 'Environment', 'Path', Path) then
    Path := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';') = 0;
end;
