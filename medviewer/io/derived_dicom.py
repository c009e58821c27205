"""Enhanced images written as a new derived DICOM series that says what made it and never passes for the acquisition.

Decisions, and why:

- SOP class: Secondary Capture Image Storage, whatever the source's class. The class alone tells a PACS,
  a hanging protocol or a reader filtering by class that no modality acquired these pixels. HU still
  survive: the SC Image IOD (PS3.3 A.8.1) includes the Modality LUT and VOI LUT modules, so Rescale
  Slope / Intercept / Type and the windows are part of it, and pydicom and cornerstone-based viewers
  (OHIF) apply them whatever the class.
- Only what the SC Image IOD holds is kept from the source (`_SC_IMAGE_IOD`, an allow-list per module):
  a CT's KVP or an MR's echo time described an acquisition these pixels did not come from, and a validator
  rightly flags them. The exceptions are `STANDARD_EXTENDED_ATTRIBUTES`: Image Plane, Frame of Reference
  and ImagerPixelSpacing, kept as Type 3 attributes under the same UID (a Standard Extended SOP Class,
  defined in PS3.2), because our loader and other viewers need them to place and order slices. Imager Pixel
  Spacing stays what it is (the detector plane): turning it into Pixel Spacing would claim a calibration to
  the patient that was never done.
- What the IOD requires is made true of this image rather than copied: Patient Orientation (General Image,
  Type 2C) is the two direction letters of the row and column vectors (PS3.3 C.7.6.1.1.1), else the
  source's own if valid, else empty (unknown). Laterality (General Series, Type 2C) is required unless the
  body part is unpaired or Image Laterality is present, and then must be absent: the source's R or L is
  kept, an unknown side is written empty. A spacing or patient measurement of 0 means unknown in practice,
  so it is left out rather than copied; Pixel Aspect Ratio is left out when it is 1:1 or any spacing says it.
- The General Equipment attributes (optional in an SC image) keep the source's manufacturer and model, so
  the origin stays traceable; the SC Equipment attributes (ConversionType WSD, the secondary capture device
  manufacturer and software) name MedViewer as what made this instance.
- DerivationCodeSequence holds only codes verified in pydicom's copy of CID 7203 "Image Derivation"
  (`pydicom.sr.codedict.codes.cid7203`): Spatial resampling (DCM 113085) whenever the scale is above 1,
  plus whatever the caller names in `Derivation.codes` (e.g. Smoothing, Unsharp mask). No CID 7203 code
  says "denoised by a network", so the method itself is in DerivationDescription.
- SourceImageSequence references each source instance with purpose "Source image for image processing
  operation" (DCM 121322, CID 7202), with the frame number for a multi-frame source, even when the source's
  class is a single-frame one (then the source itself is not conformant, and a validator says so).
- Raster sources (PNG/TIFF/JPEG/NPY) and no source at all have no patient, study or geometry to keep:
  the patient attributes are present but empty (type 2; a made-up name could be taken for a real patient),
  the study UID is new (derived from the series UID, so every slice of one derived series shares it),
  Modality is OT and there is no Image Plane. 8- and 16-bit unsigned rasters keep their bit depth; other
  integer rasters, and whole numbers without a source, are stored as 16-bit integers (signed if needed);
  float values get a rescale fitted to their range, so they survive to 1/65535 of it.

What David Clunie's validator (dciodvfy, dicom3tools) still says about a derived file, on purpose:

- "Attribute is not present in standard DICOM IOD" once for each `STANDARD_EXTENDED_ATTRIBUTES` keyword
  the file carries, and once "... this is a Standard Extended SOP Class": the extension above.
- Laterality "is only permitted to be empty when actually unknown": written empty when the body part may
  be paired (or is not named) and the source does not say which side; guessing a side would be worse.
- Complaints about values copied verbatim from the source, which we do not rewrite because that would
  change what the source recorded: e.g. a person name in a retired form ("Value dubious for this VR ...
  Retired Person Name form": pydicom's MR_small.dcm names its operator and reader "----").
- For a raster source only, "Missing attribute or value that would be needed to build DICOMDIR" for Patient
  ID, Study ID and Series Number: nothing known gives them, and a made-up one could be taken for real.
No errors: a file that fails the IOD is a bug here, unless the source itself breaks a rule we must copy
(its own SOP Instance UID, or frames in a single-frame class, as above).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pydicom.valuerep import DSfloat

from medviewer import __version__
from medviewer.errors import OutputError, UnreadableFileError, one_line
from medviewer.io.atomic import write_atomically
from medviewer.io.export import refuse_overwriting_inputs
from medviewer.io.geometry import edge_labels
from medviewer.io.header_values import geometry_vector, real_numbers
from medviewer.io.study import DicomFrame, Frame, RasterFrame, Series

log = logging.getLogger(__name__)

SECONDARY_CAPTURE = SecondaryCaptureImageStorage
SPATIAL_RESAMPLING: Code = codes.cid7203.SpatialResampling
SOURCE_IMAGE_FOR_PROCESSING: Code = codes.cid7202.SourceImageForImageProcessingOperation
SOFTWARE = f"MedViewer {__version__}"
SERIES_NUMBER_OFFSET = 1000

_LO_LIMIT = 64  # SeriesDescription is LO
_ST_LIMIT = 1024  # DerivationDescription is ST
_KEEP_OF_SOURCE_DESCRIPTION = 16  # characters of the source's description worth shortening our note for


def _keywords(text: str) -> tuple[str, ...]:
    """DICOM keywords written as whitespace-separated words, so that a module's list reads as a table."""
    return tuple(text.split())


# The Secondary Capture Image IOD (PS3.3 A.8.1, Table A.8-1): the top-level attributes of each of its modules
# (macros included), as the 2022 edition that dicom3tools' validator follows lists them. Retired attributes
# are left out. Overlay Plane (C.9.2) is in the IOD but left out too: overlays, like the curves of retired
# group 50xx, are drawn on the source's pixel grid. Whatever else the source carries is dropped.
_SC_IMAGE_IOD: dict[str, tuple[str, ...]] = {
    # Patient, C.7.1.1
    "Patient": _keywords(
        """
        PatientName PatientID IssuerOfPatientID IssuerOfPatientIDQualifiersSequence TypeOfPatientID
        PatientBirthDate PatientBirthDateInAlternativeCalendar PatientDeathDateInAlternativeCalendar
        PatientAlternativeCalendar PatientSex ReferencedPatientPhotoSequence QualityControlSubject
        ReferencedPatientSequence PatientBirthTime OtherPatientIDsSequence OtherPatientNames EthnicGroup
        PatientComments PatientSpeciesDescription PatientSpeciesCodeSequence PatientBreedDescription
        PatientBreedCodeSequence BreedRegistrationSequence StrainDescription StrainNomenclature
        StrainCodeSequence StrainAdditionalInformation StrainStockSequence GeneticModificationsSequence
        ResponsiblePerson ResponsiblePersonRole ResponsibleOrganization PatientIdentityRemoved
        DeidentificationMethod DeidentificationMethodCodeSequence SourcePatientGroupIdentificationSequence
        GroupOfPatientsIdentificationSequence
        """
    ),
    # Clinical Trial Subject, C.7.1.3
    "Clinical Trial Subject": _keywords(
        """
        ClinicalTrialSponsorName ClinicalTrialProtocolID ClinicalTrialProtocolName ClinicalTrialSiteID
        ClinicalTrialSiteName ClinicalTrialSubjectID ClinicalTrialSubjectReadingID
        ClinicalTrialProtocolEthicsCommitteeName ClinicalTrialProtocolEthicsCommitteeApprovalNumber
        """
    ),
    # General Study, C.7.2.1
    "General Study": _keywords(
        """
        StudyInstanceUID StudyDate StudyTime ReferringPhysicianName ReferringPhysicianIdentificationSequence
        ConsultingPhysicianName ConsultingPhysicianIdentificationSequence StudyID AccessionNumber
        IssuerOfAccessionNumberSequence StudyDescription PhysiciansOfRecord
        PhysiciansOfRecordIdentificationSequence NameOfPhysiciansReadingStudy
        PhysiciansReadingStudyIdentificationSequence RequestingServiceCodeSequence ReferencedStudySequence
        ProcedureCodeSequence ReasonForPerformedProcedureCodeSequence
        """
    ),
    # Patient Study, C.7.2.2
    "Patient Study": _keywords(
        """
        AdmittingDiagnosesDescription AdmittingDiagnosesCodeSequence PatientAge PatientSize PatientWeight
        PatientBodyMassIndex MeasuredAPDimension MeasuredLateralDimension PatientSizeCodeSequence
        MedicalAlerts Allergies SmokingStatus PregnancyStatus LastMenstrualDate PatientState Occupation
        AdditionalPatientHistory AdmissionID IssuerOfAdmissionIDSequence ReasonForVisit
        ReasonForVisitCodeSequence ServiceEpisodeID IssuerOfServiceEpisodeIDSequence
        ServiceEpisodeDescription PatientSexNeutered
        """
    ),
    # Clinical Trial Study, C.7.2.3
    "Clinical Trial Study": _keywords(
        """
        ClinicalTrialTimePointID ClinicalTrialTimePointDescription LongitudinalTemporalOffsetFromEvent
        LongitudinalTemporalEventType ConsentForClinicalTrialUseSequence
        """
    ),
    # General Series, C.7.3.1
    "General Series": _keywords(
        """
        Modality SeriesInstanceUID SeriesNumber Laterality SeriesDate SeriesTime PerformingPhysicianName
        PerformingPhysicianIdentificationSequence ProtocolName SeriesDescription
        SeriesDescriptionCodeSequence OperatorsName OperatorIdentificationSequence
        ReferencedPerformedProcedureStepSequence RelatedSeriesSequence BodyPartExamined PatientPosition
        SmallestPixelValueInSeries LargestPixelValueInSeries RequestAttributesSequence
        PerformedProcedureStepID PerformedProcedureStepStartDate PerformedProcedureStepStartTime
        PerformedProcedureStepEndDate PerformedProcedureStepEndTime PerformedProcedureStepDescription
        PerformedProtocolCodeSequence CommentsOnThePerformedProcedureStep AnatomicalOrientationType
        """
    ),
    # Clinical Trial Series, C.7.3.2
    "Clinical Trial Series": _keywords(
        """
        ClinicalTrialCoordinatingCenterName ClinicalTrialSeriesID ClinicalTrialSeriesDescription
        """
    ),
    # General Equipment, C.7.5.1
    "General Equipment": _keywords(
        """
        Manufacturer InstitutionName InstitutionAddress StationName InstitutionalDepartmentName
        InstitutionalDepartmentTypeCodeSequence ManufacturerModelName ManufacturerDeviceClassUID
        DeviceSerialNumber SoftwareVersions GantryID UDISequence DeviceUID SpatialResolution
        DateOfLastCalibration TimeOfLastCalibration PixelPaddingValue
        """
    ),
    # SC Equipment, C.8.6.1
    "SC Equipment": _keywords(
        """
        ConversionType Modality SecondaryCaptureDeviceID SecondaryCaptureDeviceManufacturer
        SecondaryCaptureDeviceManufacturerModelName SecondaryCaptureDeviceSoftwareVersions
        VideoImageFormatAcquired DigitalImageFormatAcquired
        """
    ),
    # General Acquisition, C.7.10.1 (a later addition to the IOD, which dciodvfy 2022 includes)
    "General Acquisition": _keywords(
        """
        AcquisitionUID AcquisitionNumber AcquisitionDate AcquisitionTime AcquisitionDateTime
        ImagesInAcquisition IrradiationEventUID
        """
    ),
    # General Image, C.7.6.1, with the General Anatomy Optional Macro (Table 10-7)
    "General Image": _keywords(
        """
        InstanceNumber PatientOrientation ContentDate ContentTime ImageType ImageComments
        QualityControlImage BurnedInAnnotation RecognizableVisualFeatures LossyImageCompression
        LossyImageCompressionRatio LossyImageCompressionMethod IconImageSequence PresentationLUTShape
        RealWorldValueMappingSequence ImageLaterality AnatomicRegionSequence
        PrimaryAnatomicStructureSequence
        """
    ),
    # General Reference, C.12.4
    "General Reference": _keywords(
        """
        ReferencedImageSequence ReferencedInstanceSequence DerivationDescription DerivationCodeSequence
        SourceImageSequence SourceInstanceSequence
        """
    ),
    # Image Pixel, C.7.6.3
    "Image Pixel": _keywords(
        """
        SamplesPerPixel PhotometricInterpretation Rows Columns BitsAllocated BitsStored HighBit
        PixelRepresentation PlanarConfiguration PixelAspectRatio SmallestImagePixelValue
        LargestImagePixelValue RedPaletteColorLookupTableDescriptor GreenPaletteColorLookupTableDescriptor
        BluePaletteColorLookupTableDescriptor RedPaletteColorLookupTableData
        GreenPaletteColorLookupTableData BluePaletteColorLookupTableData ICCProfile ColorSpace PixelData
        PixelDataProviderURL PixelPaddingRangeLimit ExtendedOffsetTable ExtendedOffsetTableLengths
        """
    ),
    # Device, C.7.6.12
    "Device": _keywords("DeviceSequence"),
    # Specimen, C.7.6.22
    "Specimen": _keywords(
        """
        ContainerIdentifier IssuerOfTheContainerIdentifierSequence AlternateContainerIdentifierSequence
        ContainerTypeCodeSequence ContainerDescription ContainerComponentSequence
        SpecimenDescriptionSequence
        """
    ),
    # SC Image, C.8.6.2, with the Basic Pixel Spacing Calibration Macro (Table 10-10)
    "SC Image": _keywords(
        """
        DateOfSecondaryCapture TimeOfSecondaryCapture NominalScannedPixelSpacing DocumentClassCodeSequence
        PixelSpacing PixelSpacingCalibrationType PixelSpacingCalibrationDescription
        """
    ),
    # Modality LUT, C.11.1
    "Modality LUT": _keywords("ModalityLUTSequence RescaleIntercept RescaleSlope RescaleType"),
    # VOI LUT, C.11.2
    "VOI LUT": _keywords("VOILUTSequence WindowCenter WindowWidth WindowCenterWidthExplanation VOILUTFunction"),
    # ICC Profile, C.11.15
    "ICC Profile": _keywords("ICCProfile ColorSpace"),
    # SOP Common, C.12.1
    "SOP Common": _keywords(
        """
        SOPClassUID SOPInstanceUID SpecificCharacterSet InstanceCreationDate InstanceCreationTime
        InstanceCoercionDateTime InstanceCreatorUID RelatedGeneralSOPClassUID OriginalSpecializedSOPClassUID
        CodingSchemeIdentificationSequence ContextGroupIdentificationSequence
        MappingResourceIdentificationSequence TimezoneOffsetFromUTC ContributingEquipmentSequence
        InstanceNumber SOPInstanceStatus SOPAuthorizationDateTime SOPAuthorizationComment
        AuthorizationEquipmentCertificationNumber MACParametersSequence DigitalSignaturesSequence
        EncryptedAttributesSequence OriginalAttributesSequence HL7StructuredDocumentReferenceSequence
        LongitudinalTemporalInformationModified QueryRetrieveView ConversionSourceAttributesSequence
        ContentQualification PrivateDataElementCharacteristicsSequence InstanceOriginStatus BarcodeValue
        ReferencedDefinedProtocolSequence ReferencedPerformedProtocolSequence
        """
    ),
    # Common Instance Reference, C.12.2
    "Common Instance Reference": _keywords(
        """
        ReferencedSeriesSequence StudiesContainingOtherReferencedInstancesSequence
        """
    ),
}
# Attributes outside the SC Image IOD that are kept on purpose (a Standard Extended SOP Class, defined in PS3.2), and
# why: without them neither our loader nor other viewers can place, order or measure the derived slices.
STANDARD_EXTENDED_ATTRIBUTES: dict[str, str] = {
    "ImagePositionPatient": "Image Plane (C.7.6.2): where the slice lies, to place and order slices",
    "ImageOrientationPatient": "Image Plane (C.7.6.2): the slice's direction, for orientation letters and MPR",
    "SliceThickness": "Image Plane (C.7.6.2): the thickness the slice represents",
    "SpacingBetweenSlices": "Image Plane (C.7.6.2): the distance between slices of the series",
    "SliceLocation": "Image Plane (C.7.6.2): the slice's position along the stack, shown by viewers",
    "FrameOfReferenceUID": "Frame of Reference (C.7.4.1): which images share one patient coordinate system",
    "PositionReferenceIndicator": "Frame of Reference (C.7.4.1): the landmark its coordinates start from",
    "ImagerPixelSpacing": (
        "projection radiographs (e.g. CR Image, C.8.1.2): spacing at the detector; as Pixel Spacing it would "
        "claim a calibration to the patient that was never done"
    ),
}
_KEPT_FROM_SOURCE = frozenset(keyword for module in _SC_IMAGE_IOD.values() for keyword in module) | frozenset(
    STANDARD_EXTENDED_ATTRIBUTES
)
# Attributes of the IOD that describe the source's pixels, frames or instance rather than this image: wrong
# once the pixels change or the instance is new.
_TIED_TO_THE_SOURCE = (
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
    "PixelDataProviderURL",
    "NumberOfFrames",
    "FrameIncrementPointer",
    "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence",
    "DimensionOrganizationSequence",
    "DimensionIndexSequence",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "ModalityLUTSequence",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "AlphaPaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "AlphaPaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID",
    "IconImageSequence",
    "PlanarConfiguration",
    # A signature, the creator's identity or an authorisation vouches for the source instance, not for this one.
    "DigitalSignaturesSequence",
    "MACParametersSequence",
    "EncryptedAttributesSequence",
    "InstanceCreatorUID",
    "InstanceCoercionDateTime",
    "InstanceOriginStatus",
    "SOPInstanceStatus",
    "SOPAuthorizationDateTime",
    "SOPAuthorizationComment",
    "AuthorizationEquipmentCertificationNumber",
    "QueryRetrieveView",
    "ConversionSourceAttributesSequence",
    "PrivateDataElementCharacteristicsSequence",  # about private elements, which are all dropped
    # The source's class and its relatives are not Secondary Capture's.
    "OriginalSpecializedSOPClassUID",
    "RelatedGeneralSOPClassUID",
    # The device that captured a secondary capture source; this instance names MedViewer instead.
    "SecondaryCaptureDeviceID",
    "VideoImageFormatAcquired",
    "DigitalImageFormatAcquired",
    # The source's own references; this image's source is the source itself (SourceImageSequence).
    "SourceInstanceSequence",
    "ReferencedSeriesSequence",
    "StudiesContainingOtherReferencedInstancesSequence",
)
_DISPLAY_OF_GREYSCALE = (
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "VOILUTSequence",
    "PresentationLUTShape",
)
# Pixel spacings, each (between rows, between columns); any one of them makes Pixel Aspect Ratio redundant.
_SPACINGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")
# Patient measurements that scanners fill with 0 when nobody entered them: 0 means unknown, not a weight of 0.
_PATIENT_MEASUREMENTS = (
    "PatientSize",
    "PatientWeight",
    "PatientBodyMassIndex",
    "MeasuredAPDimension",
    "MeasuredLateralDimension",
)
# Body Part Examined defined terms (PS3.16 Annex L, CID 4031) that name an unpaired structure, where Laterality
# must be absent. Every other value (a paired part, a local or misspelt term, none) may be paired, so Laterality
# is then required, empty when the side is unknown. The list is the one dicom3tools' dciodvfy applies (ILIUM
# and URETER included), which the validator test checks term by term.
UNPAIRED_BODY_PARTS = frozenset(
    _keywords(
        """
        ABDOMEN ABDOMENPELVIS AORTA BACK BLADDER BRAIN CEREBELLUM CERVIX CHEST CHESTABDOMEN CHESTABDPELVIS
        CIRCLEOFWILLIS COCCYX COLON CORONARYARTERY CSPINE CTSPINE DUODENUM ESOPHAGUS FACE GALLBLADDER HEAD
        HEADNECK HEART ILEUM ILIUM JAW JEJUNUM LARYNX LIVER LSPINE LSSPINE MAXILLA MEDIASTINUM MOUTH NECK
        NECKCHEST NECKCHESTABDOMEN NECKCHESTABDPELV NOSE PANCREAS PELVIS PENIS PHARYNX PROSTATE RECTUM SCALP
        SKULL SPINE SPLEEN SSPINE STERNUM STOMACH THYMUS THYROID TLSPINE TONGUE TRACHEA TSPINE URETER URETHRA
        UTERUS VAGINA VULVA WHOLEBODY
        """
    )
)
# Patient Orientation letters (PS3.3 C.7.6.1.1.1): a biped's axis of each letter, so that a value names each axis
# at most once; a quadruped's terms (LE, RT, D, V, CR, CD, R, M, PR, DI, PA, PL) in any order.
_BIPED_AXIS_OF_LETTER = {"L": 0, "R": 0, "A": 1, "P": 1, "H": 2, "F": 2}
_QUADRUPED_DIRECTION = re.compile(r"(?:LE|RT|CR|CD|PR|DI|PA|PL|D|V|R|M)+")
# Syntaxes that always lose information; JPEG 2000 may or may not, so there the file's own tag decides.
_LOSSY_SYNTAXES = frozenset(
    {
        pydicom.uid.JPEGBaseline8Bit,
        pydicom.uid.JPEGExtended12Bit,
        pydicom.uid.JPEGLSNearLossless,
        *pydicom.uid.MPEGTransferSyntaxes,
        pydicom.uid.HEVCMP51,
        pydicom.uid.HEVCM10P51,
    }
)


@dataclass(frozen=True)
class Derivation:
    """What made a derived series: one per series, shared by all its slices (same UID, number and times)."""

    method_id: str  # e.g. "msdenoiser-noise", "bicubic-x2"
    method_name: str  # for people, e.g. "Multi-scale denoiser"
    scale: int  # output size / source size; 1 for same-size enhancement
    series_uid: str
    series_number: int | None = None  # None: the source's number + 1000
    description: str = ""  # extra text for DerivationDescription
    codes: tuple[Code, ...] = ()  # CID 7203 codes that describe the method, e.g. codes.cid7203.Smoothing
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __post_init__(self) -> None:
        if not isinstance(self.scale, int) or self.scale < 1:
            raise ValueError(f"scale must be a whole number >= 1, got {self.scale!r}")
        if not self.method_id.strip() or not self.method_name.strip():
            raise ValueError("a derivation needs a method id and a method name")
        if self.created.tzinfo is None:
            raise ValueError("created must carry a time zone, so it can be written in the source's zone")

    @classmethod
    def new(
        cls,
        method_id: str,
        method_name: str,
        scale: int = 1,
        *,
        series_number: int | None = None,
        description: str = "",
        codes: Sequence[Code] = (),
    ) -> Derivation:
        """A derivation with a freshly generated SeriesInstanceUID."""
        return cls(method_id, method_name, scale, generate_uid(), series_number, description, tuple(codes))

    @property
    def derivation_codes(self) -> tuple[Code, ...]:
        """The caller's codes, plus Spatial resampling whenever the size changes."""
        if self.scale > 1 and SPATIAL_RESAMPLING not in self.codes:
            return (*self.codes, SPATIAL_RESAMPLING)
        return self.codes

    @property
    def raster_study_uid(self) -> str:
        """The new study for sources without one: derived from the series UID, so all slices agree."""
        return generate_uid(entropy_srcs=[self.series_uid, "study"])


# --------------------------------------------------------------------------------------------------
# One slice
# --------------------------------------------------------------------------------------------------


def write_derived_slice(
    source: DicomFrame | RasterFrame | None,
    values: np.ndarray,
    dest: Path,
    derivation: Derivation,
    instance_number: int,
    inputs: Iterable[Path] = (),
) -> Path:
    """Write `values` (a 2-D array in the source's units, or H x W x 3 RGB for colour) as one
    Secondary Capture instance of the derived series, atomically, never over the source or `inputs`.

    With a source, `values` must be exactly `derivation.scale` times its size; the header starts
    from the source's (patient, study, frame of reference, modality, orientation, windows) and the
    geometry is rescaled to the new pixel grid.
    """
    dest = Path(dest)
    protected = list(inputs) + ([source.path] if source is not None else [])
    refuse_overwriting_inputs(dest, protected)
    values = np.asarray(values)
    colour = _check_values(source, values, derivation.scale, dest)
    if isinstance(source, DicomFrame):
        dataset, encoding = _header_from_dicom(source, derivation, values, colour)
    else:
        dataset, encoding = _header_without_dicom(source, derivation, values, colour)
    _set_identity(dataset, derivation, instance_number)
    clipped = _set_pixels(dataset, values, encoding)
    if clipped:
        log.warning("%s: %d pixel values were outside the storable range and were clipped", dest, clipped)
    return write_atomically(dest, lambda path: pydicom.dcmwrite(path, dataset, enforce_file_format=True))


@dataclass(frozen=True)
class _Encoding:
    """How values become stored samples: stored = round((value - intercept) / slope)."""

    colour: bool
    slope: float = 1.0
    intercept: float = 0.0
    bits: int | None = None  # None: 16 bits, signed only if some stored value is negative


def _check_values(source: Frame | None, values: np.ndarray, scale: int, dest: Path) -> bool:
    """True for colour; raises OutputError when the array cannot be this source's derived image."""
    colour = values.ndim == 3 and values.shape[2] == 3
    if not (values.ndim == 2 or colour) or 0 in values.shape:
        raise OutputError(f"{dest}: need a 2-D image or H x W x 3 RGB, got an array of shape {values.shape}")
    if not (np.issubdtype(values.dtype, np.number) and not np.issubdtype(values.dtype, np.complexfloating)):
        raise OutputError(f"{dest}: need real numbers, got {values.dtype}")
    if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
        # Writing NaN as some number would put a plausible-looking value where the method failed.
        count = int(np.count_nonzero(~np.isfinite(values)))
        raise OutputError(
            f"{dest}: {count} values are NaN or infinite (kept from the input where it had them); DICOM pixel data "
            "cannot hold them, so nothing was written: write .npy to keep them"
        )
    if source is None:
        return colour
    if isinstance(source, DicomFrame):
        rows, columns, source_colour = source.header.rows, source.header.columns, source.header.is_colour
    else:
        (rows, columns), source_colour = source.image.shape, source.image.is_colour
    expected = (rows * scale, columns * scale)
    if values.shape[:2] != expected or colour != source_colour:
        kind = "H x W x 3 RGB" if source_colour else "2-D"
        raise OutputError(
            f"{dest}: the source is {rows} x {columns} and the scale x{scale}, so the image must be {kind} "
            f"of {expected[0]} x {expected[1]}; got shape {values.shape}"
        )
    return colour


def _header_from_dicom(
    frame: DicomFrame, derivation: Derivation, values: np.ndarray, colour: bool
) -> tuple[Dataset, _Encoding]:
    header = frame.header
    try:
        dataset = pydicom.dcmread(header.path, stop_before_pixels=True, force=True)
        dataset.decode()  # text as str, so that it is re-encoded correctly if the character set changes
    except Exception as error:  # pydicom raises many types for a file changed or damaged since loading
        raise UnreadableFileError(header.path, f"cannot read the header again ({error})") from None
    # A Modality LUT Sequence's output is what we are given, as whole numbers: they are stored as they are.
    had_modality_lut = "ModalityLUTSequence" in dataset
    _keep_what_still_fits(dataset, colour)
    _scale_geometry(dataset, frame, derivation.scale)
    _settle_pixel_aspect_ratio(dataset)
    dataset.PatientOrientation = patient_orientation(
        header.orientation, dataset.get("PatientOrientation"), dataset.get("AnatomicalOrientationType")
    )
    _settle_laterality(dataset)

    if colour:
        encoding = _Encoding(colour=True)
    else:
        if not had_modality_lut and "RescaleSlope" in dataset and "RescaleIntercept" in dataset:
            slope, intercept = float(dataset.RescaleSlope), float(dataset.RescaleIntercept)
        else:
            slope, intercept = 1.0, 0.0
            if not had_modality_lut and header.rescale_slope is not None and header.rescale_intercept is not None:
                slope, intercept = header.rescale_slope, header.rescale_intercept  # enhanced: functional groups
            # Encode with the Decimal Strings a reader will see, not with the exact floats.
            slope, intercept = float(_ds(slope)), float(_ds(intercept))
            dataset.RescaleSlope, dataset.RescaleIntercept = _ds(slope), _ds(intercept)
        encoding = _Encoding(colour=False, slope=slope, intercept=intercept)
        if (header.bits_allocated > 16 or header.float_pixels) and not _fits_16_bits(values, encoding):
            # 32-bit and float sources (RT dose, parametric maps) do not fit 16-bit samples under their own
            # rescale: clipping would flatten every pixel. A rescale fitted to the values keeps them to 1/65535
            # of their range. (A 16-bit source keeps its own rescale; the rare outlier beyond it is clipped.)
            encoding = _fitted_encoding(values)
            dataset.RescaleSlope, dataset.RescaleIntercept = _ds(encoding.slope), _ds(encoding.intercept)
        # Required with a rescale in the Modality LUT module (it is optional in the CT Image module).
        dataset.RescaleType = (
            str(dataset.get("RescaleType") or "").strip()
            or header.rescale_type
            or ("HU" if header.modality == "CT" else "US")
        )
        if "WindowCenter" not in dataset and header.windows:  # enhanced: windows were in the functional groups
            dataset.WindowCenter = [_ds(window.center) for window in header.windows]
            dataset.WindowWidth = [_ds(window.width) for window in header.windows]
            dataset.WindowCenterWidthExplanation = [window.name[:64] for window in header.windows]

    dataset.SeriesNumber = (
        derivation.series_number
        if derivation.series_number is not None
        else (header.series_number + SERIES_NUMBER_OFFSET if header.series_number is not None else None)
    )
    # The derived pixels carry whatever text was burned into the source's.
    dataset.BurnedInAnnotation = str(dataset.get("BurnedInAnnotation") or "NO").strip() or "NO"
    # Pixels once lossy-compressed stay lossy in any later copy (PS3.3 C.7.6.1.1.5), even if the file forgot to say.
    if header.lossy_compressed or header.transfer_syntax_uid in _LOSSY_SYNTAXES:
        dataset.LossyImageCompression = "01"
    earlier = str(dataset.get("DerivationDescription") or "").strip()
    _describe(
        dataset,
        derivation,
        source_description=str(dataset.get("SeriesDescription") or "").strip(),
        source_note=f"The source image was itself derived: {earlier}" if earlier else "",
    )
    reference = Dataset()
    reference.ReferencedSOPClassUID = header.sop_class_uid
    reference.ReferencedSOPInstanceUID = header.sop_instance_uid
    if header.number_of_frames > 1:
        reference.ReferencedFrameNumber = frame.index_in_file + 1
    reference.PurposeOfReferenceCodeSequence = DicomSequence([_code_item(SOURCE_IMAGE_FOR_PROCESSING)])
    dataset.SourceImageSequence = DicomSequence([reference])
    return dataset, encoding


def _keep_what_still_fits(dataset: Dataset, colour: bool) -> None:
    """Keep only the SC Image IOD and the deliberate extensions, less what describes the source's pixels,
    frames or instance rather than this image, and less values that only mean "unknown"."""
    for tag in list(dataset.keys()):
        # Private tags, group lengths, overlays and curves have no keyword in the allow-list either.
        if keyword_for_tag(tag) not in _KEPT_FROM_SOURCE:
            del dataset[tag]
    for keyword in _TIED_TO_THE_SOURCE + (_DISPLAY_OF_GREYSCALE if colour else ()):
        if keyword in dataset:
            del dataset[keyword]
    for keyword in _PATIENT_MEASUREMENTS:
        if keyword in dataset and _usable_numbers(dataset, keyword, 1) is None:
            del dataset[keyword]


def _usable_numbers(dataset: Dataset, keyword: str, count: int) -> tuple[float, ...] | None:
    """`count` finite numbers above 0, by the rule the loader reads spacings with; None for anything else."""
    return geometry_vector({keyword: dataset.get(keyword)}, keyword, count, notes=[], positive=True)


def _scale_geometry(dataset: Dataset, frame: DicomFrame, scale: int) -> None:
    """Pixel spacing divided by the scale, and the position moved to the centre of the new first pixel.

    ImagePositionPatient is the centre of the first pixel; the first orientation triplet points along a
    row (increasing column index), the second down a column (increasing row index); PixelSpacing is
    (distance between rows, distance between columns). An upscaler that keeps the image's outer edges
    (pixel centres at (i + 0.5) / scale - 0.5 in source pixels, as Pillow and half-pixel interpolation
    do) puts the new first centre at position + (0.5 / scale - 0.5) * (column spacing * row direction +
    row spacing * column direction).
    """
    header = frame.header
    for keyword in _SPACINGS:
        if keyword not in dataset:
            continue
        spacing = _usable_numbers(dataset, keyword, 2)
        if spacing is None:
            # 0\0, a negative or a lone value means the spacing is unknown: none at all says so, a copy would not.
            del dataset[keyword]
        elif scale > 1:
            dataset[keyword].value = [_ds(value / scale) for value in spacing]
    patient_spacing = header.pixel_spacing_mm if header.pixel_spacing_source == "PixelSpacing" else None
    if patient_spacing is not None and not all(np.isfinite(value) and value > 0 for value in patient_spacing):
        patient_spacing = None
    if "PixelSpacing" not in dataset and patient_spacing is not None:  # enhanced: from the functional groups
        dataset.PixelSpacing = [_ds(value / scale) for value in patient_spacing]
    if "PixelSpacing" not in dataset:  # the Basic Pixel Spacing Calibration Macro qualifies a Pixel Spacing
        for keyword in ("PixelSpacingCalibrationType", "PixelSpacingCalibrationDescription"):
            if keyword in dataset:
                del dataset[keyword]
    if "ImageOrientationPatient" not in dataset and header.orientation is not None:
        dataset.ImageOrientationPatient = [_ds(value) for value in header.orientation]

    position = frame.position
    if position is None:
        return
    if scale > 1:
        if header.orientation is None or patient_spacing is None:
            # Without the grid, a shifted position cannot be computed, and an unshifted one would be wrong.
            log.warning("%s: no orientation or pixel spacing; the derived image has no position", header.path)
            if "ImagePositionPatient" in dataset:
                del dataset.ImagePositionPatient
            return
        row_direction = np.asarray(header.orientation[:3], dtype=float)
        column_direction = np.asarray(header.orientation[3:], dtype=float)
        row_spacing, column_spacing = patient_spacing
        shift = (0.5 / scale - 0.5) * (column_spacing * row_direction + row_spacing * column_direction)
        dataset.ImagePositionPatient = [_ds(value) for value in np.asarray(position, dtype=float) + shift]
    elif "ImagePositionPatient" not in dataset:  # enhanced: from the functional groups
        dataset.ImagePositionPatient = [_ds(value) for value in position]


def _settle_pixel_aspect_ratio(dataset: Dataset) -> None:
    """Pixel Aspect Ratio (Image Pixel, Type 1C) only where it says something: not 1:1, and no spacing written.

    PS3.3 C.7.6.3.1: required when the ratio is not 1:1 and no Pixel, Imager or Nominal Scanned Pixel Spacing
    gives the physical spacing; with one of them it must be absent. An empty or malformed ratio is unknown."""
    if "PixelAspectRatio" not in dataset:
        return
    ratio = real_numbers({"PixelAspectRatio": dataset.get("PixelAspectRatio")}, "PixelAspectRatio")
    usable = len(ratio) == 2 and all(value is not None and value > 0 and value == int(value) for value in ratio)
    if not usable or ratio[0] == ratio[1] or any(keyword in dataset for keyword in _SPACINGS):
        del dataset.PixelAspectRatio


def patient_orientation(
    orientation: Sequence[float] | None, source_value: object = None, anatomical_orientation_type: object = None
) -> list[str] | str:
    """Patient Orientation (General Image, Type 2C) of an image: the direction of its rows, then its columns.

    From ImageOrientationPatient when known, as the letters of the right and the bottom edge (PS3.3
    C.7.6.1.1.1: L/R, A/P, H/F, an oblique one by its components in order of size, e.g. "LP"; a resampled
    image keeps its letters). Otherwise the source's own value if it is valid, else empty: the attribute is
    required in an SC image, and empty is how DICOM says unknown. A quadruped's letters are not LPS names, so
    for one only the source's own value can be kept."""
    quadruped = str(anatomical_orientation_type or "").strip().upper() == "QUADRUPED"
    labels = None if quadruped else edge_labels(tuple(orientation) if orientation is not None else None)
    if labels is not None:
        return [labels.right, labels.bottom]
    if _is_patient_orientation(source_value, quadruped):
        return [str(value).strip().upper() for value in source_value]  # type: ignore[union-attr]
    return ""


def _is_patient_orientation(value: object, quadruped: bool) -> bool:
    """Two values, each naming directions by the standard's letters, a biped's axis at most once per value."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:  # type: ignore[arg-type]
        return False
    for direction in value:  # type: ignore[union-attr]
        text = str(direction).strip().upper()
        if quadruped:
            if not _QUADRUPED_DIRECTION.fullmatch(text):
                return False
        elif not text or any(letter not in _BIPED_AXIS_OF_LETTER for letter in text):
            return False
        elif len({_BIPED_AXIS_OF_LETTER[letter] for letter in text}) != len(text):
            return False  # "LR", "HF" or a repeated letter names no direction
    return True


def laterality(source_laterality: object, body_part_examined: object, image_laterality_present: bool) -> str | None:
    """General Series Laterality (Type 2C) for the derived image: "R", "L", "" (unknown) or None (absent).

    PS3.3 C.7.3.1: required when the body part examined is paired and Image Laterality is absent, and
    absent otherwise. A body part that is not named, or named by a term outside `UNPAIRED_BODY_PARTS`, may be
    paired, so the attribute is written, with the source's side if it gave R or L, else empty: an unknown
    side is a warning for a validator, a guessed one would be a wrong image. For an unpaired part the
    source's side is dropped, since the standard forbids it there."""
    body_part = str(body_part_examined or "").strip().upper()
    if image_laterality_present or body_part in UNPAIRED_BODY_PARTS:
        return None
    side = str(source_laterality or "").strip().upper()
    return side if side in ("R", "L") else ""


def _settle_laterality(dataset: Dataset) -> None:
    side = laterality(dataset.get("Laterality"), dataset.get("BodyPartExamined"), "ImageLaterality" in dataset)
    if side is None:
        if str(dataset.get("Laterality") or "").strip():
            log.debug("Laterality %s left out: an unpaired body part, or Image Laterality", dataset.Laterality)
        dataset.pop("Laterality", None)
    else:
        dataset.Laterality = side


def _header_without_dicom(
    source: RasterFrame | None, derivation: Derivation, values: np.ndarray, colour: bool
) -> tuple[Dataset, _Encoding]:
    """A minimal Secondary Capture for a picture with no patient, study or geometry of its own."""
    dataset = Dataset()
    dataset.SpecificCharacterSet = "ISO_IR 100"
    dataset.PatientName = ""
    dataset.PatientID = ""
    dataset.PatientBirthDate = ""
    dataset.PatientSex = ""
    dataset.StudyInstanceUID = derivation.raster_study_uid
    created = derivation.created.astimezone()
    dataset.StudyDate = created.strftime("%Y%m%d")
    dataset.StudyTime = created.strftime("%H%M%S")
    dataset.ReferringPhysicianName = ""
    dataset.StudyID = ""
    dataset.AccessionNumber = ""
    dataset.Modality = "OT"
    dataset.PatientOrientation = ""  # type 2C: required without Image Plane attributes
    dataset.Laterality = ""  # type 2C: required unless an unpaired body part is named, and none is
    dataset.BurnedInAnnotation = "NO"
    if source is not None and source.image.format == "JPEG":
        dataset.LossyImageCompression = "01"  # JPEG files are lossy-compressed; so is anything made from them
    dataset.SeriesNumber = derivation.series_number
    name = source.path.name if source is not None else ""
    kind = f"{source.image.format} file {name}" if source is not None else "an image without a source file"
    _describe(dataset, derivation, source_description=name, source_note=f"Source: {kind}.")

    if colour:
        return dataset, _Encoding(colour=True)
    source_dtype = source.image.pixels.dtype if source is not None else None
    if source_dtype in (np.uint8, np.uint16):
        return dataset, _Encoding(colour=False, bits=source_dtype.itemsize * 8)
    if source_dtype is not None and np.issubdtype(source_dtype, np.integer):
        return dataset, _Encoding(colour=False)
    encoding = _fitted_encoding(values)
    if (encoding.slope, encoding.intercept) != (1.0, 0.0):
        dataset.RescaleSlope = _ds(encoding.slope)
        dataset.RescaleIntercept = _ds(encoding.intercept)
        dataset.RescaleType = "US"
    return dataset, encoding


def _fits_16_bits(values: np.ndarray, encoding: _Encoding) -> bool:
    """Whether every value is a whole stored sample of int16 or uint16 under this rescale."""
    scaled = (values.astype(np.float64) - encoding.intercept) / encoding.slope
    if not np.allclose(scaled, np.rint(scaled), rtol=0, atol=1e-6):
        return False
    low, high = float(scaled.min()), float(scaled.max())
    return -(2**15) <= low and high < 2**15 or 0 <= low and high < 2**16


def _fitted_encoding(values: np.ndarray) -> _Encoding:
    """Whole numbers that fit 16 bits are stored as they are; anything else over the full uint16 range."""
    finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    if finite.size == 0:
        return _Encoding(colour=False)
    low, high = float(finite.min()), float(finite.max())
    whole = np.issubdtype(values.dtype, np.integer) or bool(np.all(finite == np.round(finite)))
    if whole and (-(2**15) <= low and high < 2**15 or 0 <= low and high < 2**16):
        return _Encoding(colour=False)
    # The written Decimal Strings are what a reader will use, so encode with those, not the exact floats.
    slope = float(_ds((high - low) / 65535.0)) if high > low else 1.0
    intercept = float(_ds(low))
    return _Encoding(colour=False, slope=slope, intercept=intercept, bits=16)


def _describe(dataset: Dataset, derivation: Derivation, *, source_description: str, source_note: str) -> None:
    """The words that tell people and software this is an enhancement, not the acquired image."""
    value_3 = list(dataset.get("ImageType") or [])[2:3]
    dataset.ImageType = ["DERIVED", "SECONDARY", *(value_3 or ["OTHER"]), "ENHANCED"]
    dataset.SeriesDescription = series_description(source_description, derivation.method_name)
    upscaled = f", upscaled x{derivation.scale}" if derivation.scale > 1 else ""
    statement = (
        f"Enhanced by {SOFTWARE} with {derivation.method_name} (method {derivation.method_id}){upscaled}. "
        "The pixel values were computed by this method: this is not the acquired image."
    )
    extra = " ".join(part for part in (derivation.description.strip(), source_note) if part)
    dataset.DerivationDescription = _trim(f"{statement} {extra}".strip(), _ST_LIMIT)
    comments = str(dataset.get("ImageComments") or "").strip()
    dataset.ImageComments = statement + (f" Source image comments: {comments}" if comments else "")
    if derivation.derivation_codes:
        dataset.DerivationCodeSequence = DicomSequence([_code_item(code) for code in derivation.derivation_codes])
    elif "DerivationCodeSequence" in dataset:
        del dataset.DerivationCodeSequence
    _ensure_character_set(dataset, derivation)


def series_description(source_description: str, method_name: str) -> str:
    """'<source> [enhanced: <method>, not the acquired image]' within the 64-character LO limit.

    The method name and the word 'enhanced' always stay; the source's description is shortened first
    (keeping at least a recognisable start), then the note, then the source's description goes."""
    method_name = " ".join(method_name.split())
    source_description = " ".join(source_description.split())
    notes = (
        f"[enhanced: {method_name}, not the acquired image]",
        f"[enhanced: {method_name}, not acquired]",
        f"[enhanced: {method_name}]",
    )
    for note in notes:
        if not source_description and len(note) <= _LO_LIMIT:
            return note
        room = _LO_LIMIT - len(note) - 1
        if room >= min(len(source_description), _KEEP_OF_SOURCE_DESCRIPTION):
            return f"{source_description[:room].rstrip()} {note}"
    for note in notes:
        if len(note) <= _LO_LIMIT:
            return note
    return _trim(notes[-1], _LO_LIMIT)  # a method name of over 50 characters


def _ensure_character_set(dataset: Dataset, derivation: Derivation) -> None:
    """Our own words may not fit the source's character set (ASCII when absent): switch to UTF-8 then.

    Safe because the dataset was decoded to str, so every value is re-encoded on writing."""
    ours = f"{derivation.method_name}{derivation.description}{dataset.get('SeriesDescription', '')}"
    if ours.isascii():
        return
    current = dataset.get("SpecificCharacterSet") or ""
    current = [current] if isinstance(current, str) else list(current)
    if current != ["ISO_IR 192"]:
        dataset.SpecificCharacterSet = "ISO_IR 192"


def _set_identity(dataset: Dataset, derivation: Derivation, instance_number: int) -> None:
    """New instance and series, in the source's study; dates say when the derivation was made."""
    sop_instance_uid = generate_uid()
    zone = _source_zone(dataset)
    created = derivation.created.astimezone(zone)
    now = datetime.now(timezone.utc).astimezone(zone)
    dataset.SOPClassUID = SECONDARY_CAPTURE
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.SeriesInstanceUID = derivation.series_uid
    dataset.InstanceNumber = instance_number
    dataset.SeriesDate = dataset.ContentDate = created.strftime("%Y%m%d")
    dataset.SeriesTime = dataset.ContentTime = created.strftime("%H%M%S.%f")
    dataset.InstanceCreationDate = dataset.DateOfSecondaryCapture = now.strftime("%Y%m%d")
    dataset.InstanceCreationTime = dataset.TimeOfSecondaryCapture = now.strftime("%H%M%S.%f")
    dataset.ConversionType = "WSD"  # workstation
    dataset.SecondaryCaptureDeviceManufacturer = "MedViewer"
    dataset.SecondaryCaptureDeviceManufacturerModelName = "MedViewer"
    dataset.SecondaryCaptureDeviceSoftwareVersions = SOFTWARE
    dataset.LossyImageCompression = str(dataset.get("LossyImageCompression") or "00")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MEDVIEWER {__version__}"[:16]
    dataset.file_meta = meta


def _source_zone(dataset: Dataset) -> timezone | None:
    """The source's declared UTC offset: all of an instance's dates and times are in it. None: local time."""
    offset = str(dataset.get("TimezoneOffsetFromUTC") or "").strip()
    match = re.fullmatch(r"([+-])(\d\d)(\d\d)", offset)
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def _set_pixels(dataset: Dataset, values: np.ndarray, encoding: _Encoding) -> int:
    """Store the values natively (Explicit VR Little Endian); return how many had to be clipped."""
    rows, columns = values.shape[:2]
    dataset.Rows, dataset.Columns = rows, columns
    if encoding.colour:
        stored, clipped = _clip_to(np.rint(values.astype(np.float64)), 0, 255, np.uint8)
        dataset.SamplesPerPixel = 3
        dataset.PhotometricInterpretation = "RGB"  # pydicom decodes YBR and palette sources to RGB
        dataset.PlanarConfiguration = 0
        bits, signed = 8, False
    else:
        scaled = np.rint((values.astype(np.float64) - encoding.intercept) / encoding.slope)
        if encoding.bits is not None:
            bits, signed = encoding.bits, False
        else:
            bits, signed = 16, bool(scaled.size and scaled.min() < 0)
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[(bits, signed)]
        stored, clipped = _clip_to(scaled, low, high, dtype)
        dataset.SamplesPerPixel = 1
        photometric = str(dataset.get("PhotometricInterpretation") or "").strip().upper()
        dataset.PhotometricInterpretation = photometric if photometric == "MONOCHROME1" else "MONOCHROME2"
    dataset.BitsAllocated = bits
    dataset.BitsStored = bits
    dataset.HighBit = bits - 1
    dataset.PixelRepresentation = 1 if signed else 0
    data = np.ascontiguousarray(stored.astype(stored.dtype.newbyteorder("<"), copy=False)).tobytes()
    dataset.PixelData = data + b"\0" if len(data) % 2 else data  # values have even length (PS3.5 7.1.1)
    dataset["PixelData"].VR = "OW" if bits == 16 else "OB"
    return clipped


def _clip_to(scaled: np.ndarray, low: int, high: int, dtype: type) -> tuple[np.ndarray, int]:
    clipped = int(np.count_nonzero((scaled < low) | (scaled > high)))
    return np.clip(scaled, low, high).astype(dtype), clipped


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _ds(value: float) -> DSfloat:
    """A Decimal String within DICOM's 16 characters (positions and spacings often would not fit)."""
    return DSfloat(value, auto_format=True)


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


# --------------------------------------------------------------------------------------------------
# A whole series
# --------------------------------------------------------------------------------------------------


def write_derived_series(
    series: Series,
    volume: np.ndarray,
    dest_folder: Path,
    derivation: Derivation,
    inputs: Iterable[Path] = (),
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write `volume` (frames x H' x W', or x 3 for colour) as one derived series in `dest_folder`,
    one file per frame, and return the paths in frame order.

    Files are named like the sources, or IM_0001.dcm ... when the sources' names would not do (one
    multi-frame file, repeated names, names that are the source's SOP Instance UID). Nothing is written
    if any name is an input (the series' own files are always inputs) or, without `overwrite`, exists.
    """
    dest_folder = Path(dest_folder)
    volume = np.asarray(volume)
    if volume.ndim not in (3, 4) or volume.shape[0] != len(series):
        raise OutputError(
            f"{dest_folder}: need one image per frame of the series ({len(series)}), got an array of shape "
            f"{volume.shape}"
        )
    # Checked for the whole volume first, so that a bad frame never leaves half a series behind.
    _check_values(series.frames[0], volume[0], derivation.scale, dest_folder)
    if np.issubdtype(volume.dtype, np.floating) and not np.all(np.isfinite(volume)):
        count = int(np.count_nonzero(~np.isfinite(volume)))
        raise OutputError(
            f"{dest_folder}: {count} values are NaN or infinite (kept from the input where it had them); DICOM "
            "pixel data cannot hold them, so nothing was written: write .npy to keep them"
        )
    names = _file_names(series.frames)
    destinations = [dest_folder / name for name in names]
    protected = [frame.path for frame in series.frames] + list(inputs)
    for destination in destinations:
        refuse_overwriting_inputs(destination, protected)
    if not overwrite:
        existing = [path for path in destinations if path.exists()]
        if existing:
            raise OutputError(f"{existing[0]} already exists ({len(existing)} of {len(destinations)} names taken)")
    if dest_folder.exists() and not dest_folder.is_dir():
        raise OutputError(f"{dest_folder}: not a folder")
    dest_folder.mkdir(parents=True, exist_ok=True)
    numbers = _instance_numbers(series.frames)
    for index, (frame, destination) in enumerate(zip(series.frames, destinations, strict=True)):
        write_derived_slice(frame, volume[index], destination, derivation, numbers[index], protected)
    log.info("wrote %d derived slices (%s) to %s", len(destinations), one_line(derivation.method_name), dest_folder)
    return destinations


def _file_names(frames: list[Frame]) -> list[str]:
    names = [frame.path.name for frame in frames]
    useful = (
        len(set(names)) == len(names)
        and all(isinstance(frame, DicomFrame) and frame.header.number_of_frames == 1 for frame in frames)
        # A name that is the source's UID would make the derived file look like that very instance.
        and not any(Path(name).stem == frame.header.sop_instance_uid for name, frame in zip(names, frames, strict=True))
    )
    if useful:
        return names
    width = max(4, len(str(len(frames))))
    return [f"IM_{index + 1:0{width}d}.dcm" for index in range(len(frames))]


def _instance_numbers(frames: list[Frame]) -> list[int]:
    """The sources' InstanceNumbers when every frame has its own, else 1..N in frame order."""
    numbers = [frame.header.instance_number if isinstance(frame, DicomFrame) else None for frame in frames]
    if None not in numbers and len(set(numbers)) == len(numbers):
        return [int(number) for number in numbers]
    return list(range(1, len(frames) + 1))
