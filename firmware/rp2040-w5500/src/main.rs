//! The stats pipeline on a WIZnet W5500-EVB-Pico: a task records a
//! temperature (the RP2040's on-chip sensor) and a loop counter; the stats
//! runner sends them to a collector at 192.168.1.10:8125 through the W5500.
//! The board is 192.168.1.50/24.

#![no_std]
#![no_main]

use defmt::{info, unwrap};
use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_net::{IpEndpoint, Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_wiznet::chip::W5500;
use embassy_rp::adc::{self, Adc, Channel};
use embassy_rp::bind_interrupts;
use embassy_rp::clocks::RoscRng;
use embassy_rp::dma;
use embassy_rp::gpio::{Input, Level, Output, Pull};
use embassy_rp::peripherals::{DMA_CH0, DMA_CH1, SPI0};
use embassy_rp::spi::{self, Async, Spi};
use embassy_time::{Delay, Duration, Timer};
use embedded_hal_bus::spi::ExclusiveDevice;
use panic_probe as _;
use static_cell::StaticCell;
use stats_embedded::core::{
    DropPolicy, Event, KeyId, Kind, LaneCapacities, Priority, Registry, Slot, StaticLanes,
};
use stats_embedded::{Config, Recorder, Resources, Runner};

bind_interrupts!(struct Irqs {
    ADC_IRQ_FIFO => adc::InterruptHandler;
    DMA_IRQ_0 => dma::InterruptHandler<DMA_CH0>, dma::InterruptHandler<DMA_CH1>;
});

type Spi0 = ExclusiveDevice<Spi<'static, SPI0, Async>, Output<'static>, Delay>;
type Wiznet = embassy_net_wiznet::Runner<'static, W5500, Spi0, Input<'static>, Output<'static>>;

const CAPS: LaneCapacities = LaneCapacities {
    high: 16,
    medium: 64,
    low: 16,
};
/// The shared set (interrupt handlers, any task) plus one for the sensor task.
type Lanes = StaticLanes<{ 2 * CAPS.total() }, 2>;
static LANES: Lanes = match Lanes::new(CAPS, DropPolicy::DropByPriority) {
    Ok(lanes) => lanes,
    Err(_) => panic!("lane capacities"),
};
type Keys = Registry<8, 256>;
type Stats = Runner<'static, [Slot<Event>; 2 * CAPS.total()], Keys, 2>;

#[embassy_executor::task]
async fn wiznet_task(runner: Wiznet) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn net_task(
    mut runner: embassy_net::Runner<'static, embassy_net_wiznet::Device<'static>>,
) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn stats_task(runner: &'static mut Stats) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn sensor_task(
    mut adc: Adc<'static, adc::Async>,
    mut sensor: Channel<'static>,
    temperature: KeyId,
    loops: KeyId,
) {
    let Some(mut recorder) = Recorder::new(&LANES).claim_set() else {
        defmt::panic!("no lane set left for the sensor task");
    };
    loop {
        if let Ok(raw) = adc.read(&mut sensor).await {
            // RP2040 datasheet, section 4.9.5: 27 °C at 0.706 V, -1.721 mV/°C.
            let volts = f64::from(raw) * 3.3 / 4096.0;
            let celsius = 27.0 - (volts - 0.706) / 0.001721;
            let _ = recorder.record(temperature, Kind::Gauge, celsius, Priority::Medium);
        }
        let _ = recorder.record(loops, Kind::Counter, 1.0, Priority::Low);
        Timer::after(Duration::from_millis(100)).await;
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    let mut rng = RoscRng;

    // The W5500 on SPI0: SCK 18, MOSI 19, MISO 16, CS 17, INT 21, RESET 20.
    let mut spi_config = spi::Config::default();
    spi_config.frequency = 50_000_000;
    let spi = Spi::new(
        p.SPI0, p.PIN_18, p.PIN_19, p.PIN_16, p.DMA_CH0, p.DMA_CH1, Irqs, spi_config,
    );
    let cs = Output::new(p.PIN_17, Level::High);
    let device = unwrap!(ExclusiveDevice::new(spi, cs, Delay));
    let interrupt = Input::new(p.PIN_21, Pull::Up);
    let reset = Output::new(p.PIN_20, Level::High);
    static WIZNET: StaticCell<embassy_net_wiznet::State<8, 8>> = StaticCell::new();
    let mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x50];
    let Ok((device, wiznet)) = embassy_net_wiznet::new(
        mac,
        WIZNET.init(embassy_net_wiznet::State::new()),
        device,
        interrupt,
        reset,
    )
    .await
    else {
        defmt::panic!("the W5500 did not answer");
    };
    spawner.spawn(unwrap!(wiznet_task(wiznet)));

    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 50), 24),
        gateway: Some(Ipv4Address::new(192, 168, 1, 1)),
        dns_servers: Default::default(),
    });
    static NET: StaticCell<StackResources<2>> = StaticCell::new();
    let (stack, net): (Stack<'static>, _) = embassy_net::new(
        device,
        config,
        NET.init(StackResources::new()),
        rng.next_u64(),
    );
    spawner.spawn(unwrap!(net_task(net)));

    static KEYS: StaticCell<Keys> = StaticCell::new();
    let keys = KEYS.init(Registry::new());
    let temperature = unwrap!(keys.register("board.temperature", &[("board", "w5500-evb-pico")]));
    let loops = unwrap!(keys.register("board.loops", &[("board", "w5500-evb-pico")]));

    static BUFFERS: StaticCell<Resources<1024, 2048>> = StaticCell::new();
    static STATS: StaticCell<Stats> = StaticCell::new();
    let collector = IpEndpoint::new(Ipv4Address::new(192, 168, 1, 10).into(), 8125);
    let buffers = BUFFERS.init(Resources::new());
    let stats = STATS.init_with(|| {
        unwrap!(Runner::new(
            stack,
            &LANES,
            keys,
            buffers,
            Config::new(collector, rng.next_u64())
        ))
    });
    spawner.spawn(unwrap!(stats_task(stats)));

    let adc = Adc::new(p.ADC, Irqs, adc::Config::default());
    let sensor = Channel::new_temp_sensor(p.ADC_TEMP_SENSOR);
    spawner.spawn(unwrap!(sensor_task(adc, sensor, temperature, loops)));
    info!("recording; sending to the collector at 192.168.1.10:8125");
}
