"""Word lists the recognizers share.

TECH_WORDS are what viewer overlays (CT/MR/US/X-ray, PACS toolbars) print
around the image. They are never person names, and a line made only of them is
technical annotation a clinician needs to keep. COMMON_WORDS are ordinary
words that appear capitalised on screens and in reports; they veto the
"capitalised word next to a given name" rule. Both are lowercase and
accent-folded (see text.fold). The gazetteer build drops TECH_WORDS too.
"""

from __future__ import annotations

TECH_WORDS = frozenset("""
kvp kv ma mas ms msec sec mgy msv mgycm ctdi ctdivol dlp dap dose rate
w l wl ww wc ww/wl wl/ww c level window width center centre lvl win
zoom gain depth mhz khz hz fr fps frq freq frame frames focus focal foc dyn dynamic range dr
tis tib tic tisb mi db dba cm mm um nm m cm2 mm2 ml cc
se im ser img st series image images slice slices sl thk thick thickness loc location pos position
ax axial sag sagittal cor coronal tra trans transverse long longitudinal obl oblique lat lateral
ap pa med medial prox distal ant post sup inf rt lt bilat bilateral
abd abdo abdomen liver kidney kidneys renal thyroid carotid ob gyn fetal fetus foetus
uterus ovary ovaries bladder gallbladder gb spleen pancreas aorta ivc cbd portal hepatic
breast pelvis pelvic chest thorax lung lungs brain head neck spine cervical thoracic lumbar
sacrum knee shoulder hip ankle wrist elbow hand foot heart cardiac vascular venous arterial
testis testes scrotum prostate appendix bowel colon rectum stomach msk soft tissue bone
muscle tendon joint nerve vessel vein artery jugular femoral popliteal brachial radial
hr bp bpm spo2 resp ecg ekg
fov matrix te tr ti flip fa nex nsa etl bw bandwidth t1 t2 t1w t2w pdw flair dwi adc swi stir
pd gre fse tse epi mip minip mpr mprage vr 3d 2d 4d ssfp trufi haste space vibe dixon fs fatsat
ct mr mri us xr cr dx mg nm pt pet rf xa sr ot io px bmd spect
kernel filter algorithm recon std standard sharp smooth bone lung soft mediastinum
contrast none iv oral pre postcontrast arterial venous delayed phase scan scout topogram localizer
pitch rotation collimation rot col coll mode bmode mmode b-mode m-mode cfm cf color colour
doppler pw cw pdi power prf wf persist persistence map res harmonic thi spatial compound
angle flow velocity vel ri pi psv edv ps ed tamax tamean vmax vmean mean sd avg
ga efw crl bpd hc ac fl hl nt afi lmp edd ofd cer tcd
modality body part study acquisition protocol sequence seq rows columns cols row page
av lut invert rotate measure measurement dist distance area volume vol ratio
x y z r a p h f s i
kv/ma ma/s mas/ma
gy mgy/s
exposure exp exi ei di ds sid sod grid aec
uid uids
ext int
mhz/ghz
cine loop clip live frz freeze frozen
probe transducer preset app exam
tgc agc
fps/hz
hd hdr hq
gen res
ruq luq rlq llq epigastric hypogastric umbilical flank iliac
hfs ffs hfp ffp hfdr hfdl ffdr ffdl
original primary secondary derived localizer other
acr
length len tilt speed index noise spacing pixel pixels bits allocated stored rescale intercept slope
photometric monochrome1 monochrome2 rgb ybr transfer syntax sop storage reference exposure tube current
convolution spot diameter reconstruction gantry table direction cw ccw event scanner suite
stnd bone+ hu suv suvmax suvmean suvpeak bmi temp weight height bsa
dfov sfov afov wfov
prox mid dist cca ica eca ecca vert subclavian cfa sfa pfa gsv ssv
void prevoid postvoid pre-void post-void
ivs ivsd ivss lvid lvidd lvids lvpw lvpwd lvef ef lvot rvot la ra lv rv mv tv av pv pg mg vti e/a
teich simpson biplane apical parasternal subcostal suprasternal chamber chambers plax psax a4c a2c a3c
gallbladder cervix endometrium placenta amniotic umbilical nuchal femur humerus
twin twins trim trimester
supine prone erect upright decubitus portable marker markers
head-first feet-first first supine
coil channel ch ch1 ch2 ch3 ch4 tx rx
annotation annotations measure measurements measurement caliper
save print export close cancel apply reset undo redo help menu settings setup
on off hi lo low high med medium yes
next prev previous up down
dicom pacs ris worklist
ge philips siemens acuson toshiba aplio canon logiq voluson samsung mindray hitachi esaote fujifilm
agfa carestream hologic sonosite butterfly vivid epiq affiniti lumify healthineers somatom sequoia
revolution optima discovery signa aquilion ingenia achieva magnetom
eff sv sample gate
acq time duration delay software version build model station manufacturer protocol sw fw laterality
ima spi et sp harm horizontal vertical axis bile duct o'clock oclock feet scale auto collection
fhr fhr1 fhr2 omnipaque visipaque iomeron ultravist gadovist dotarem magnevist multihance sonovue
definity optison
lad rao lao rca lcx lima rima pda om neo neonatal cal calib dev eco ecografia echografie echographie sono
sonography angio cath lab
trans/long long/trans
left right links rechts gauche droite droit
links/rechts
anterior posterior superior inferior
wbc rbc hb hgb hct plt mcv mch inr aptt pt crp esr bse pct egfr gfr urea bun creat creatinine kreatinine
creatinine creatinin sodium natrium potassium kalium chloride bicarbonate lactate lactaat laktat glucose
glucosa alat asat alp ggt bilirubin bilirubine albumin albumine troponin trop bnp ntprobnp d-dimer ddimer
ferritin hba1c tsh ft4 cholesterol ldl hdl mmol mmol/l mg/l g/l g/dl u/l iu/l umol/l ml/min 10^9/l
culture cultuur kultur aerobic anaerobic aerobe anaerobe specimen probe
ctpa ctkub ctca cxr axr kub mrcp ercp echo tte tee
""".split())

COMMON_WORDS = frozenset("""
vandaag gisteren morgen heute gestern aujourd'hui hier demain
liste demande afdeling abteilung verwijsformulier formulier formular formulaire
the a an and or of in on at to for from by with without not no yes none all any
is are was were be been has have had do does did this that these those it its
new old next prev previous back front top bottom up down
save print export import close open edit view tools help file files menu exit cancel ok
report reports result results findings impression conclusion comment comments note notes
history clinical indication request requested order ordered exam examination procedure
study studies series image images scan scans view views frame frames page pages
patient patients name names date time age sex gender weight height size
male female unknown other
normal abnormal left right both bilateral upper lower
report signed final preliminary draft addendum
hospital clinic ward unit department dept room bed floor
general royal university memorial community county city district regional central national
children childrens women womens mens infirmary
radiology imaging ultrasound sonography radiography xray x-ray mammography
emergency outpatient inpatient accident day night
doctor nurse physician consultant radiologist sonographer technologist operator
reason diagnosis dx
mark marker annotation text label arrow line lines point points region roi
auto manual default custom preset presets
total sum count value values min max average
start stop end pause play record live
date dob birth born age
first last middle given family surname forename initials
number no nr num id code
street road lane avenue
north south east west
scale grid ruler caliper calipers
calc calculation calculations
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday
today yesterday tomorrow
right left
position orientation status information details data list record records type class
category location description
demographics search browser summary portal safety transport consent identification identifier info
overview registration admin administration worklist queue folder selection lookup merge index
assistant console settings preferences profile account login logout
""".split())

# Words that end a name value taken after a label ("Name: SMITH JOHN Sex: M").
NAME_STOP = frozenset("""
sex age gender geslacht leeftijd alter geschlecht sexe dob born geb geboren
id mrn nhs bsn dob date datum study exam series
""".split())

# Month names and abbreviations in EN/NL/DE/FR, folded. Value: month number.
MONTHS: dict[str, int] = {}
for _num, _words in enumerate((
    "january jan januari januar janner jan janvier janv",
    "february feb februari februar fevrier fevr fev",
    "march mar maart mrt marz mrz mars",
    "april apr avril avr",
    "may mei mai",
    "june jun juni juin",
    "july jul juli juillet juil",
    "august aug augustus aout",
    "september sep sept septembre",
    "october oct oktober okt octobre",
    "november nov novembre",
    "december dec dezember dez decembre",
), start=1):
    for _w in _words.split():
        MONTHS[_w] = _num
del _num, _words, _w
